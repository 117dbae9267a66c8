/*
 * The application's own RPC functions, after the built-ins of the portable server.
 */
#include <stdint.h>

#include "zephyr_compat.h"

#include <rpc_server/rpc.h>
#include <rpc_server/server.h>

#include "app.h"
#include "fault_functions.h"

#define APP_RAW_ECHO_MAX (1 << 20)

static void json_u32(struct rpc_text *out, const char *key, uint32_t value, bool first)
{
	if (!first) {
		rpc_text_str(out, ",");
	}
	rpc_text_str(out, "\"");
	rpc_text_str(out, key);
	rpc_text_str(out, "\":");
	rpc_text_u64(out, value);
}

/* app.stats(): what happened to the received bytes, as a JSON object. */
static void app_stats(struct rpc_call *call)
{
	const struct rpc_server *server = rpc_call_user_ctx(call);
	const struct rpc_unframer_stats *frames = rpc_server_stats(server);
	struct app_rx_stats rx;
	struct rpc_text out;
	uint8_t *buf;
	size_t cap;

	if (rpc_call_check_num_args(call, 0) != 0) {
		return;
	}
	app_rx_stats_get(&rx);
	buf = rpc_call_return_reserve(call, RPC_TYPE_STR, &cap);
	if (buf == NULL) {
		return;
	}
	rpc_text_init(&out, (char *)buf, cap);
	rpc_text_str(&out, "{");
	json_u32(&out, "rx_bytes", rx.bytes, true);
	json_u32(&out, "rx_overflow_bytes", rx.overflow_bytes, false);
	json_u32(&out, "rx_overflow_events", rx.overflow_events, false);
	json_u32(&out, "rx_ring_size", rx.ring_size, false);
	json_u32(&out, "rx_ring_peak", rx.ring_peak, false);
	json_u32(&out, "frames_delivered", frames->delivered, false);
	json_u32(&out, "frames_bad_crc", frames->bad_crc, false);
	json_u32(&out, "frames_too_long", frames->too_long, false);
	json_u32(&out, "frames_invalid_escape", frames->invalid_escape, false);
	json_u32(&out, "frames_interrupted", frames->interrupted, false);
	rpc_text_str(&out, "}");
	if (out.truncated) {
		rpc_call_raise(call, "app.stats: reply does not fit RPC_SERVER_MAX_PACKET");
		return;
	}
	(void)rpc_call_return_commit(call, out.len);
}

/* app.raw_echo(n): after the Return, the next n bytes received are echoed without framing. */
static void app_raw_echo(struct rpc_call *call)
{
	int64_t count;

	if (rpc_call_check_num_args(call, 1) != 0 || rpc_call_arg_int(call, 0, &count) != 0) {
		return;
	}
	if (count < 0 || count > APP_RAW_ECHO_MAX) {
		rpc_call_raise(call, "app.raw_echo: count out of range 0..1048576");
		return;
	}
	app_raw_echo_start((uint32_t)count);
	(void)rpc_call_return_null(call);
}

const struct rpc_function app_functions[] = {
	{"app.fatal", fault_fn_fatal},
	{"app.stats", app_stats},
	{"app.raw_echo", app_raw_echo},
	{"app.reset_after_ms", fault_fn_reset_after_ms},
	{"app.torn_reply", fault_fn_torn_reply},
};

const size_t app_num_functions = sizeof(app_functions) / sizeof(app_functions[0]);
