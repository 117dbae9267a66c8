/*
 * Built-in functions (docs/protocol.md section 3.4).
 */
#include <string.h>

#include <rpc_server/builtins.h>
#include <rpc_server/config.h>
#include <rpc_server/crc16.h>
#include <rpc_server/rpc.h>

static void builtin_echo(struct rpc_call *call)
{
	const uint8_t *data;
	size_t len;

	if (rpc_call_check_num_args(call, 1) != 0 ||
	    rpc_call_arg_bytes(call, 0, &data, &len) != 0) {
		return;
	}
	(void)rpc_call_return_bytes(call, data, len);
}

static void builtin_add(struct rpc_call *call)
{
	int64_t a, b;
	uint64_t sum;

	if (rpc_call_check_num_args(call, 2) != 0 || rpc_call_arg_int(call, 0, &a) != 0 ||
	    rpc_call_arg_int(call, 1, &b) != 0) {
		return;
	}
	/* Wrapping sum: unsigned arithmetic is defined modulo 2^64, signed overflow is not. */
	sum = (uint64_t)a + (uint64_t)b;
	if (sum <= (uint64_t)INT64_MAX) {
		(void)rpc_call_return_int(call, (int64_t)sum);
	} else {
		(void)rpc_call_return_int(call, (int64_t)(sum - (uint64_t)INT64_MAX - 1u) + INT64_MIN);
	}
}

/* Append @p str as a JSON string literal, quotes included. */
static void json_string(struct rpc_text *out, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const char *p = str != NULL ? str : "";
	const char *run = p;

	rpc_text_mem(out, "\"", 1);
	for (; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[6];
		size_t esc_len = 2;

		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		rpc_text_mem(out, run, (size_t)(p - run));
		run = p + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xFu];
			esc_len = 6;
			break;
		}
		rpc_text_mem(out, esc, esc_len);
	}
	rpc_text_mem(out, run, (size_t)(p - run));
	rpc_text_mem(out, "\"", 1);
}

static void json_key(struct rpc_text *out, const char *key, bool first)
{
	if (!first) {
		rpc_text_mem(out, ",", 1);
	}
	json_string(out, key);
	rpc_text_mem(out, ":", 1);
}

static void builtin_info(struct rpc_call *call)
{
	const struct rpc_platform *platform = rpc_call_platform(call);
	static const struct rpc_platform none;
	struct rpc_text out;
	uint8_t *buf;
	size_t cap;

	if (rpc_call_check_num_args(call, 0) != 0) {
		return;
	}
	if (platform == NULL) {
		platform = &none;
	}
	/* Written in place in the reply buffer: no second buffer for the JSON text. */
	buf = rpc_call_return_reserve(call, RPC_TYPE_STR, &cap);
	if (buf == NULL) {
		return;
	}
	rpc_text_init(&out, (char *)buf, cap);
	rpc_text_mem(&out, "{", 1);
	json_key(&out, "firmware_version", true);
	json_string(&out, platform->firmware_version);
	json_key(&out, "board", false);
	json_string(&out, platform->board);
	json_key(&out, "boot_count", false);
	rpc_text_u64(&out, platform->boot_count);
	json_key(&out, "boot_id", false);
	rpc_text_mem(&out, "\"", 1);
	rpc_text_hex(&out, platform->boot_id, 16);
	rpc_text_mem(&out, "\"", 1);
	json_key(&out, "uptime_ms", false);
	rpc_text_u64(&out, platform->uptime_ms != NULL ? platform->uptime_ms(platform->ctx) : 0u);
	json_key(&out, "max_payload", false);
	rpc_text_u64(&out, RPC_SERVER_MAX_PAYLOAD);
	json_key(&out, "max_packet", false);
	rpc_text_u64(&out, RPC_SERVER_MAX_PACKET);
	json_key(&out, "reset_cause", false);
	json_string(&out, platform->reset_cause);
	rpc_text_mem(&out, "}", 1);
	if (out.truncated) {
		/* Cut JSON is worse than none: the host would fail to parse it. */
		rpc_call_raise(call, "rpc.info: reply does not fit RPC_SERVER_MAX_PACKET");
		return;
	}
	(void)rpc_call_return_commit(call, out.len);
}

static void builtin_log(struct rpc_call *call)
{
	const char *text;
	size_t len;

	if (rpc_call_check_num_args(call, 1) != 0 || rpc_call_arg_str(call, 0, &text, &len) != 0) {
		return;
	}
	/* The Log goes out before the reply, so the host has it when the call returns. */
	if (rpc_call_log(call, (const uint8_t *)text, len) != 0) {
		rpc_call_raise(call, "rpc.log: could not send the Log message");
		return;
	}
	(void)rpc_call_return_null(call);
}

static void builtin_sleep_ms(struct rpc_call *call)
{
	const struct rpc_platform *platform = rpc_call_platform(call);
	struct rpc_text *msg;
	int64_t ms;

	if (rpc_call_check_num_args(call, 1) != 0 || rpc_call_arg_int(call, 0, &ms) != 0) {
		return;
	}
	if (ms < 0 || ms > RPC_BUILTIN_MAX_SLEEP_MS) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "rpc.sleep_ms: argument out of range 0..60000: ");
		rpc_text_i64(msg, ms);
		return;
	}
	if (platform == NULL || platform->sleep_ms == NULL) {
		rpc_call_raise(call, "rpc.sleep_ms: not supported on this platform");
		return;
	}
	platform->sleep_ms(platform->ctx, (uint32_t)ms);
	(void)rpc_call_return_null(call);
}

static void builtin_crc16(struct rpc_call *call)
{
	const uint8_t *data;
	size_t len;

	if (rpc_call_check_num_args(call, 1) != 0 ||
	    rpc_call_arg_bytes(call, 0, &data, &len) != 0) {
		return;
	}
	(void)rpc_call_return_int(call, (int64_t)rpc_crc16(data, len, RPC_CRC16_INIT));
}

static void builtin_reset(struct rpc_call *call)
{
	const struct rpc_platform *platform = rpc_call_platform(call);

	if (rpc_call_check_num_args(call, 0) != 0) {
		return;
	}
	if (platform == NULL || platform->reset == NULL) {
		rpc_call_raise(call, "rpc.reset: not supported on this platform");
		return;
	}
	platform->reset(platform->ctx);
	/* Still here: the platform scheduled the reset. rpc.reset never replies. */
	rpc_call_suppress_reply(call);
}

static void builtin_fail(struct rpc_call *call)
{
	const char *text;
	size_t len;

	if (rpc_call_check_num_args(call, 1) != 0 || rpc_call_arg_str(call, 0, &text, &len) != 0) {
		return;
	}
	rpc_call_raise_len(call, text, len);
}

const struct rpc_function rpc_builtin_functions[RPC_BUILTIN_COUNT] = {
	{"rpc.echo", builtin_echo},
	{"rpc.add", builtin_add},
	{"rpc.info", builtin_info},
	{"rpc.log", builtin_log},
	{"rpc.sleep_ms", builtin_sleep_ms},
	{"rpc.crc16", builtin_crc16},
	{"rpc.reset", builtin_reset},
	{"rpc.fail", builtin_fail},
};
