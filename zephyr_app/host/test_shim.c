/*
 * ctypes shim over the real server code, for tests/unit (test_c_vectors.py, test_differential.py).
 *
 * Test-only host code: it may allocate. Every function takes plain pointers and sizes so that
 * the Python side needs no struct layouts. Output buffers: a function returns the number of bytes
 * the full result needs; if that is more than the capacity given, nothing is copied, and the
 * caller retries with a bigger buffer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rpc_server/builtins.h>
#include <rpc_server/crc16.h>
#include <rpc_server/framing.h>
#include <rpc_server/rpc.h>
#include <rpc_server/server.h>
#include <rpc_server/session.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- growable byte buffer ---------------------------------------------------------------- */

struct bytes {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static int bytes_append(struct bytes *b, const void *data, size_t len)
{
	if (len > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap - b->len < len) {
			cap *= 2;
		}
		p = realloc(b->data, cap);
		if (p == NULL) {
			return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	if (len > 0) {
		memcpy(b->data + b->len, data, len);
	}
	b->len += len;
	return 0;
}

/* Record = u32 length (native order) + bytes; used for queues of payloads and messages. */
static int bytes_append_record(struct bytes *b, const void *data, size_t len)
{
	uint32_t n = (uint32_t)len;

	if (bytes_append(b, &n, sizeof(n)) != 0) {
		return -1;
	}
	return bytes_append(b, data, len);
}

/* Copy all of @p b to @p out if it fits, then clear it; returns the length in any case. */
static size_t bytes_take(struct bytes *b, uint8_t *out, size_t cap)
{
	size_t len = b->len;

	if (len <= cap) {
		if (len > 0) {
			memcpy(out, b->data, len);
		}
		b->len = 0;
	}
	return len;
}

static int capture_write(void *ctx, const uint8_t *data, size_t len)
{
	return bytes_append(ctx, data, len) == 0 ? 0 : RPC_ERR_NOSPC;
}

/* ---- crc and framer ---------------------------------------------------------------------- */

EXPORT size_t rpc_test_max_packet(void)
{
	return RPC_SERVER_MAX_PACKET;
}

EXPORT uint16_t rpc_test_crc16(const uint8_t *data, size_t len)
{
	return rpc_crc16(data, len, RPC_CRC16_INIT);
}

/*
 * Frame @p payload. @p nop: with the leading FE of a fresh framer; without it, the packet is the
 * second one of a framer (so the real "FE only once" logic produces it). @p chunk > 0 streams the
 * payload with write_chunk calls of that size. Returns the wire length (see the top of the file)
 * or (size_t)-1 if the framer reported an error.
 */
EXPORT size_t rpc_test_frame_chunked(const uint8_t *payload, size_t len, int nop, size_t chunk,
				     uint8_t *out, size_t cap)
{
	struct bytes wire = {0};
	struct rpc_framer framer;
	size_t result = (size_t)-1;
	int err;

	rpc_framer_init(&framer, capture_write, &wire);
	if (!nop) {
		err = rpc_framer_write_packet(&framer, NULL, 0);
		wire.len = 0;
		if (err != 0) {
			goto out;
		}
	}
	if (chunk == 0) {
		err = rpc_framer_write_packet(&framer, payload, len);
	} else {
		size_t off = 0;

		err = rpc_framer_start(&framer, len);
		while (err == 0 && off < len) {
			size_t n = len - off < chunk ? len - off : chunk;

			err = rpc_framer_write_chunk(&framer, payload + off, n);
			off += n;
		}
		if (err == 0) {
			err = rpc_framer_finish(&framer);
		}
	}
	if (err == 0) {
		result = bytes_take(&wire, out, cap);
	}
out:
	free(wire.data);
	return result;
}

EXPORT size_t rpc_test_frame(const uint8_t *payload, size_t len, int nop, uint8_t *out, size_t cap)
{
	return rpc_test_frame_chunked(payload, len, nop, 0, out, cap);
}

/* ---- unframer ---------------------------------------------------------------------------- */

struct rpc_test_unframer {
	struct rpc_unframer unframer;
	struct bytes delivered;
	size_t read_pos;
	uint8_t *buf;
};

static void unframer_deliver(void *ctx, const uint8_t *payload, size_t len)
{
	struct rpc_test_unframer *t = ctx;

	(void)bytes_append_record(&t->delivered, payload, len);
}

/* An unframer whose buffer holds exactly @p max_payload bytes. */
EXPORT struct rpc_test_unframer *rpc_test_unframer_new(size_t max_payload)
{
	struct rpc_test_unframer *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		return NULL;
	}
	/* malloc(0) may return NULL; one spare byte keeps the buffer pointer valid. */
	t->buf = malloc(max_payload + 1);
	if (t->buf == NULL) {
		free(t);
		return NULL;
	}
	rpc_unframer_init(&t->unframer, t->buf, max_payload, unframer_deliver, t);
	return t;
}

EXPORT void rpc_test_unframer_free(struct rpc_test_unframer *t)
{
	if (t != NULL) {
		free(t->delivered.data);
		free(t->buf);
		free(t);
	}
}

EXPORT void rpc_test_unframer_feed(struct rpc_test_unframer *t, const uint8_t *data, size_t len)
{
	rpc_unframer_feed(&t->unframer, data, len);
}

/*
 * Next delivered payload: returns its length and copies it if it fits @p cap (then it is
 * consumed); returns (size_t)-1 when there is none.
 */
EXPORT size_t rpc_test_unframer_next(struct rpc_test_unframer *t, uint8_t *out, size_t cap)
{
	uint32_t n;

	if (t->read_pos >= t->delivered.len) {
		t->read_pos = 0;
		t->delivered.len = 0;
		return (size_t)-1;
	}
	memcpy(&n, t->delivered.data + t->read_pos, sizeof(n));
	if (n <= cap) {
		if (n > 0) {
			memcpy(out, t->delivered.data + t->read_pos + sizeof(n), n);
		}
		t->read_pos += sizeof(n) + n;
	}
	return n;
}

/* out[0..4] = delivered, bad_crc, too_long, invalid_escape, interrupted. */
EXPORT void rpc_test_unframer_stats(const struct rpc_test_unframer *t, uint32_t out[5])
{
	const struct rpc_unframer_stats *s = &t->unframer.stats;

	out[0] = s->delivered;
	out[1] = s->bad_crc;
	out[2] = s->too_long;
	out[3] = s->invalid_escape;
	out[4] = s->interrupted;
}

/* ---- a fixed test platform --------------------------------------------------------------- */

struct test_platform {
	struct rpc_platform platform;
	uint32_t resets;
	uint64_t slept_ms;
	struct bytes console;
};

static void test_sleep_ms(void *ctx, uint32_t ms)
{
	struct test_platform *p = ctx;

	p->slept_ms += ms;
}

/* Returns: the server takes the reset as scheduled and sends nothing, as a device would. */
static void test_reset(void *ctx)
{
	struct test_platform *p = ctx;

	p->resets++;
}

static uint64_t test_uptime_ms(void *ctx)
{
	(void)ctx;
	return 1234;
}

static void test_console(void *ctx, const char *line, size_t len)
{
	struct test_platform *p = ctx;

	(void)bytes_append(&p->console, line, len);
	(void)bytes_append(&p->console, "\n", 1);
}

static void test_platform_init(struct test_platform *p)
{
	memset(p, 0, sizeof(*p));
	p->platform.ctx = p;
	p->platform.sleep_ms = test_sleep_ms;
	p->platform.reset = test_reset;
	p->platform.uptime_ms = test_uptime_ms;
	p->platform.console = test_console;
	p->platform.firmware_version = "0.0.0-test";
	p->platform.board = "test";
	p->platform.reset_cause = "power-on";
	p->platform.boot_count = 1;
	p->platform.boot_id = 0x0123456789abcdefull;
}

/* ---- rpc dispatch ------------------------------------------------------------------------ */

/*
 * Answer one RPC packet with the built-in table and the test platform (no log sink: rpc.log
 * raises). Returns the reply length (see the top of the file), 0 if no reply is sent.
 */
EXPORT size_t rpc_test_dispatch(const uint8_t *request, size_t len, uint8_t *out, size_t cap)
{
	static uint8_t reply[RPC_SERVER_MAX_PACKET - RPC_SESSION_HEADER_LEN];
	struct test_platform platform;
	struct rpc_dispatcher d;
	size_t n;

	test_platform_init(&platform);
	memset(&d, 0, sizeof(d));
	d.builtins = rpc_builtin_functions;
	d.num_builtins = RPC_BUILTIN_COUNT;
	d.platform = &platform.platform;
	/* A copy, so that ASan sees reads past the request's end. */
	uint8_t *copy = malloc(len + 1);

	if (copy == NULL) {
		return 0;
	}
	memcpy(copy, request, len);
	n = rpc_dispatch_request(&d, copy, len, reply, sizeof(reply));
	free(copy);
	free(platform.console.data);
	if (n <= cap && n > 0) {
		memcpy(out, reply, n);
	}
	return n;
}

/* ---- server ------------------------------------------------------------------------------ */

struct rpc_test_server {
	struct test_platform platform;
	struct bytes output;
	struct rpc_server server;
};

EXPORT struct rpc_test_server *rpc_test_server_new(uint8_t nonce_seed)
{
	struct rpc_test_server *t = calloc(1, sizeof(*t));
	struct rpc_server_config config;

	if (t == NULL) {
		return NULL;
	}
	test_platform_init(&t->platform);
	memset(&config, 0, sizeof(config));
	config.write = capture_write;
	config.write_ctx = &t->output;
	config.platform = &t->platform.platform;
	config.nonce_seed = nonce_seed;
	if (rpc_server_init(&t->server, &config) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

EXPORT void rpc_test_server_free(struct rpc_test_server *t)
{
	if (t != NULL) {
		free(t->output.data);
		free(t->platform.console.data);
		free(t);
	}
}

EXPORT int rpc_test_server_start(struct rpc_test_server *t)
{
	return rpc_server_start(&t->server);
}

EXPORT void rpc_test_server_feed(struct rpc_test_server *t, const uint8_t *data, size_t len)
{
	rpc_server_feed(&t->server, data, len);
}

EXPORT int rpc_test_server_log(struct rpc_test_server *t, const char *text, size_t len)
{
	return rpc_server_log(&t->server, text, len);
}

/* Wire bytes written since the last call (consumed if they fit). */
EXPORT size_t rpc_test_server_output(struct rpc_test_server *t, uint8_t *out, size_t cap)
{
	return bytes_take(&t->output, out, cap);
}

/* Console lines written since the last call, '\n'-separated (consumed if they fit). */
EXPORT size_t rpc_test_server_console(struct rpc_test_server *t, uint8_t *out, size_t cap)
{
	return bytes_take(&t->platform.console, out, cap);
}

/* out[0..3] = session state, session id, reset hook calls, total ms slept. */
EXPORT void rpc_test_server_status(const struct rpc_test_server *t, uint64_t out[4])
{
	out[0] = (uint64_t)t->server.session.state;
	out[1] = t->server.session.id;
	out[2] = t->platform.resets;
	out[3] = t->platform.slept_ms;
}

/* out[0..4] like rpc_test_unframer_stats(). */
EXPORT void rpc_test_server_stats(const struct rpc_test_server *t, uint32_t out[5])
{
	const struct rpc_unframer_stats *s = rpc_server_stats(&t->server);

	out[0] = s->delivered;
	out[1] = s->bad_crc;
	out[2] = s->too_long;
	out[3] = s->invalid_escape;
	out[4] = s->interrupted;
}

/* ---- bare session (both roles), messages as records -------------------------------------- */

struct rpc_test_session {
	struct rpc_session session;
	struct bytes sent;
	struct bytes normal;
	struct bytes logs;
};

static int session_capture_send(void *ctx, uint16_t id, uint8_t type, const uint8_t *body,
				size_t len)
{
	struct rpc_test_session *t = ctx;
	uint8_t *msg = malloc(RPC_SESSION_HEADER_LEN + len);
	int err;

	if (msg == NULL) {
		return RPC_ERR_NOSPC;
	}
	msg[0] = (uint8_t)id;
	msg[1] = (uint8_t)(id >> 8);
	msg[2] = type;
	if (len > 0) {
		memcpy(msg + RPC_SESSION_HEADER_LEN, body, len);
	}
	err = bytes_append_record(&t->sent, msg, RPC_SESSION_HEADER_LEN + len);
	free(msg);
	return err == 0 ? 0 : RPC_ERR_NOSPC;
}

static void session_capture_normal(void *ctx, const uint8_t *body, size_t len)
{
	struct rpc_test_session *t = ctx;

	(void)bytes_append_record(&t->normal, body, len);
}

static void session_capture_log(void *ctx, const uint8_t *text, size_t len)
{
	struct rpc_test_session *t = ctx;

	(void)bytes_append_record(&t->logs, text, len);
}

static const struct rpc_session_ops test_session_ops = {
	.send = session_capture_send,
	.normal = session_capture_normal,
	.log = session_capture_log,
};

EXPORT struct rpc_test_session *rpc_test_session_new(uint8_t nonce_seed)
{
	struct rpc_test_session *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		rpc_session_init(&t->session, &test_session_ops, t, nonce_seed);
	}
	return t;
}

EXPORT void rpc_test_session_free(struct rpc_test_session *t)
{
	if (t != NULL) {
		free(t->sent.data);
		free(t->normal.data);
		free(t->logs.data);
		free(t);
	}
}

EXPORT int rpc_test_session_start(struct rpc_test_session *t)
{
	return rpc_session_start(&t->session);
}

EXPORT int rpc_test_session_initiate(struct rpc_test_session *t)
{
	return rpc_session_initiate(&t->session);
}

EXPORT void rpc_test_session_receive(struct rpc_test_session *t, const uint8_t *msg, size_t len)
{
	rpc_session_receive(&t->session, msg, len);
}

/* State (low 8 bits) and id (bits 8..23). */
EXPORT uint32_t rpc_test_session_state(const struct rpc_test_session *t)
{
	return (uint32_t)t->session.state | ((uint32_t)t->session.id << 8);
}

/* which: 0 = messages sent, 1 = Normal bodies received, 2 = Log texts received. Records. */
EXPORT size_t rpc_test_session_take(struct rpc_test_session *t, int which, uint8_t *out,
				    size_t cap)
{
	struct bytes *b = which == 0 ? &t->sent : which == 1 ? &t->normal : &t->logs;

	return bytes_take(b, out, cap);
}

EXPORT uint8_t rpc_test_next_nonce(uint8_t nonce)
{
	return rpc_session_next_nonce(nonce);
}
