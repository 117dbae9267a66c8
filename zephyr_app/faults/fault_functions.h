/*
 * Device-side fault functions for reset tests, shared by the Zephyr firmware and the host server.
 *
 * The harness must reset a device at exact points of the protocol: while a function runs,
 * between a request and its reply, and in the middle of a reply frame. Only the device knows
 * when it is at those points, so these RPC functions arm the fault and the platform carries it
 * out. This file is portable (no OS headers); each platform implements the three hooks below.
 *
 *   app.fatal()                         a real fatal error on the device (it reboots, cause
 *                                       "fatal-error"); no reply is ever sent
 *   app.reset_after_ms(ms, kind)        returns null at once; ms after that reply has been
 *                                       sent the device resets by itself: kind "rpc" (a
 *                                       software reset) or "fatal" (a fatal error)
 *   app.torn_reply(data, cut, action)   replies like rpc.echo(data), but the RPC UART stops after
 *                                       cut bytes of that reply's frame; then action "rpc"
 *                                       resets, "fatal" raises a fatal error, and "hang" sends
 *                                       nothing more until the device is reset from outside
 */
#ifndef FAULT_FUNCTIONS_H_
#define FAULT_FUNCTIONS_H_

#include <stdint.h>

#include <rpc_server/rpc.h>

enum fault_action {
	FAULT_ACTION_RESET, /* a software reset, as rpc.reset */
	FAULT_ACTION_FATAL, /* a fatal error, as app.fatal */
	FAULT_ACTION_HANG,  /* stop transmitting and wait for an external reset */
};

/* The longest app.reset_after_ms delay. */
#define FAULT_MAX_DELAY_MS 60000u

/* The handlers, for the platform's function table. */
void fault_fn_fatal(struct rpc_call *call);
void fault_fn_reset_after_ms(struct rpc_call *call);
void fault_fn_torn_reply(struct rpc_call *call);

/* ---- implemented by each platform --------------------------------------------------------- */

/* Raise a real fatal error now (a kernel panic, abort()); does not return. */
void fault_hook_fatal(void);

/*
 * Carry out @p action (never FAULT_ACTION_HANG) @p ms milliseconds after the current request's
 * reply has been sent, from a timer: the platform starts the timer once rpc_server_feed()
 * returns, so that even ms = 0 cannot cut that reply short.
 */
void fault_hook_schedule(uint32_t ms, enum fault_action action);

/*
 * Cut the next reply frame after @p cut bytes (the bytes the write callback sends next, counted
 * across calls), then carry out @p action.
 */
void fault_hook_tear_next_reply(uint32_t cut, enum fault_action action);

#endif /* FAULT_FUNCTIONS_H_ */
