/*
 * The fault functions' argument checks; the faults themselves are the platform's hooks.
 */
#include "fault_functions.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static bool name_is(const char *name, size_t len, const char *expected)
{
	size_t n = strlen(expected);

	return len == n && memcmp(name, expected, n) == 0;
}

/* Argument @p index as an action; raises and returns -1 on anything else. */
static int arg_action(struct rpc_call *call, size_t index, bool allow_hang,
		      enum fault_action *out)
{
	const char *name;
	size_t len;

	if (rpc_call_arg_str(call, index, &name, &len) != 0) {
		return -1;
	}
	if (name_is(name, len, "rpc")) {
		*out = FAULT_ACTION_RESET;
	} else if (name_is(name, len, "fatal")) {
		*out = FAULT_ACTION_FATAL;
	} else if (allow_hang && name_is(name, len, "hang")) {
		*out = FAULT_ACTION_HANG;
	} else {
		struct rpc_text *msg = rpc_call_raise_text(call);

		rpc_text_str(msg, rpc_call_name(call));
		rpc_text_str(msg, allow_hang ? ": action must be \"rpc\", \"fatal\" or \"hang\", not \""
					     : ": kind must be \"rpc\" or \"fatal\", not \"");
		rpc_text_mem(msg, name, len);
		rpc_text_str(msg, "\"");
		return -1;
	}
	return 0;
}

void fault_fn_fatal(struct rpc_call *call)
{
	if (rpc_call_check_num_args(call, 0) != 0) {
		return;
	}
	fault_hook_fatal();
}

void fault_fn_reset_after_ms(struct rpc_call *call)
{
	enum fault_action action;
	int64_t ms;

	if (rpc_call_check_num_args(call, 2) != 0 || rpc_call_arg_int(call, 0, &ms) != 0 ||
	    arg_action(call, 1, false, &action) != 0) {
		return;
	}
	if (ms < 0 || ms > (int64_t)FAULT_MAX_DELAY_MS) {
		rpc_call_raise(call, "app.reset_after_ms: delay out of range 0..60000");
		return;
	}
	fault_hook_schedule((uint32_t)ms, action);
	(void)rpc_call_return_null(call);
}

void fault_fn_torn_reply(struct rpc_call *call)
{
	enum fault_action action;
	const uint8_t *data;
	size_t len;
	int64_t cut;

	if (rpc_call_check_num_args(call, 3) != 0 || rpc_call_arg_bytes(call, 0, &data, &len) != 0 ||
	    rpc_call_arg_int(call, 1, &cut) != 0 || arg_action(call, 2, true, &action) != 0) {
		return;
	}
	/* A cut at or past the frame's end would tear nothing; the frame is longer than data. */
	if (cut < 0 || (uint64_t)cut > (uint64_t)len) {
		rpc_call_raise(call, "app.torn_reply: cut out of range 0..len(data)");
		return;
	}
	if (rpc_call_return_bytes(call, data, len) != 0) {
		return;
	}
	fault_hook_tear_next_reply((uint32_t)cut, action);
}
