/*
 * What main.c (UART glue, boot, reset) and functions.c (the application's RPC functions) share.
 */
#ifndef APP_APP_H_
#define APP_APP_H_

#include <stddef.h>
#include <stdint.h>

#include <rpc_server/server.h>

/* Receive path counters (UART ISR -> ring buffer), read by app.stats and the console. */
struct app_rx_stats {
	/* Bytes read from the RPC UART by the ISR. */
	uint32_t bytes;
	/* Bytes dropped because the ring buffer was full, and how many ISR runs dropped some. */
	uint32_t overflow_bytes;
	uint32_t overflow_events;
	/* Ring buffer size and the most it ever held. */
	uint32_t ring_size;
	uint32_t ring_peak;
};

/* A consistent copy of the receive counters. */
void app_rx_stats_get(struct app_rx_stats *out);

/*
 * Hand the next count received bytes straight back on the RPC UART, bypassing the protocol
 * (app.raw_echo); the host sends them only after the call's Return.
 */
void app_raw_echo_start(uint32_t count);

/*
 * The application's functions, after the built-ins (first handle RPC_BUILTIN_COUNT + 1):
 *   app.fatal()                   (9) a kernel panic; the fatal error handler records
 *                                 "fatal-error" and reboots
 *   app.stats()                   (10) JSON str: receive counters, the unframer's drop counters
 *   app.raw_echo(n)               (11) null; the next n received bytes are echoed raw
 *   app.reset_after_ms(ms, kind)  (12) see faults/fault_functions.h
 *   app.torn_reply(data, cut, a)  (13) see faults/fault_functions.h
 * Their user context (rpc_server_config.user_ctx) is the struct rpc_server.
 */
extern const struct rpc_function app_functions[];
extern const size_t app_num_functions;

#endif /* APP_APP_H_ */
