/*
 * Built-in functions (docs/protocol.md section 3.4) and the platform hooks they need.
 *
 * The built-ins are portable: what differs between a Zephyr board and the POSIX host server
 * (how to sleep, reset, read the uptime, what to report in rpc.info) comes in through
 * struct rpc_platform, a table of function pointers plus the facts fixed at boot.
 */
#ifndef RPC_SERVER_BUILTINS_H_
#define RPC_SERVER_BUILTINS_H_

#include <stddef.h>
#include <stdint.h>

#include <rpc_server/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rpc_platform {
	/* Passed to every hook. */
	void *ctx;
	/* Block for @p ms milliseconds (rpc.sleep_ms). NULL: rpc.sleep_ms raises. */
	void (*sleep_ms)(void *ctx, uint32_t ms);
	/*
	 * Restart the device (rpc.reset). Should not return; if it does, the reset is taken as
	 * scheduled and no reply is sent. NULL: rpc.reset raises.
	 */
	void (*reset)(void *ctx);
	/* Milliseconds since boot (rpc.info). NULL: reported as 0. */
	uint64_t (*uptime_ms)(void *ctx);
	/*
	 * The device's own console (UART log, stderr): one line per event, without newline.
	 * Optional. The server reports the boot line, session changes and received logs here.
	 */
	void (*console)(void *ctx, const char *line, size_t len);

	/* Facts reported by rpc.info and the boot log; NULL strings are reported as "". */
	const char *firmware_version;
	const char *board;
	const char *reset_cause;
	uint32_t boot_count;
	/* Random per boot; reported as 16 lowercase hex digits. */
	uint64_t boot_id;
};

/* Number of built-ins; an application's first function has handle RPC_BUILTIN_COUNT + 1. */
#define RPC_BUILTIN_COUNT 8

/*
 * The built-ins in handle order: rpc.echo (1), rpc.add (2), rpc.info (3), rpc.log (4),
 * rpc.sleep_ms (5), rpc.crc16 (6), rpc.reset (7), rpc.fail (8).
 */
extern const struct rpc_function rpc_builtin_functions[RPC_BUILTIN_COUNT];

/* Longest rpc.sleep_ms argument. */
#define RPC_BUILTIN_MAX_SLEEP_MS 60000

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_BUILTINS_H_ */
