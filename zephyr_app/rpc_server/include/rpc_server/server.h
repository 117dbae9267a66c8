/*
 * The RPC server: unframer -> session -> dispatcher -> functions, and back through the framer.
 *
 * One struct rpc_server holds everything, buffers included (about 2 * RPC_SERVER_MAX_PACKET
 * bytes), so a firmware places it statically and knows its RAM use at link time. The server has
 * no thread and no clock of its own: the application feeds it received bytes, and handlers run
 * synchronously inside rpc_server_feed(), writing their reply through the write callback before
 * it returns.
 *
 * Function table: the built-ins always come first (handles 1..RPC_BUILTIN_COUNT, in the order of
 * docs/protocol.md section 3.4); the application's own table, given in the config, follows, so
 * its first function has handle RPC_BUILTIN_COUNT + 1. There is no way to drop or reorder
 * built-ins: every firmware must answer them with the same handles.
 */
#ifndef RPC_SERVER_SERVER_H_
#define RPC_SERVER_SERVER_H_

#include <stddef.h>
#include <stdint.h>

#include <rpc_server/builtins.h>
#include <rpc_server/config.h>
#include <rpc_server/framing.h>
#include <rpc_server/rpc.h>
#include <rpc_server/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest line handed to the platform's console hook; longer lines are cut. */
#ifndef RPC_SERVER_CONSOLE_LINE
#define RPC_SERVER_CONSOLE_LINE 160
#endif

struct rpc_server_config {
	/* Sends wire bytes to the host (UART, stdout). Required. */
	rpc_write_fn write;
	void *write_ctx;
	/* Hooks and boot facts for the built-ins and the boot log; may be NULL. */
	const struct rpc_platform *platform;
	/* The application's functions, after the built-ins; may be NULL with num_functions 0. */
	const struct rpc_function *functions;
	size_t num_functions;
	/* Handed to the application's handlers through rpc_call_user_ctx(). */
	void *user_ctx;
	/* Seed of the device nonce sequence (docs/protocol.md 2.2); take it from the boot id. */
	uint8_t nonce_seed;
};

struct rpc_server {
	const struct rpc_platform *platform;
	struct rpc_framer framer;
	struct rpc_unframer unframer;
	struct rpc_session session;
	struct rpc_dispatcher dispatcher;
	/* Received frame payload (session header + RPC packet). */
	uint8_t rx_buf[RPC_SERVER_MAX_PACKET];
	/* Reply RPC packet; the session header is sent from the stack in front of it. */
	uint8_t tx_buf[RPC_SERVER_MAX_PACKET - RPC_SESSION_HEADER_LEN];
	char console_line[RPC_SERVER_CONSOLE_LINE];
};

/* Set up @p server; sends nothing yet. RPC_ERR_INVAL if the config lacks a write callback. */
int rpc_server_init(struct rpc_server *server, const struct rpc_server_config *config);

/*
 * Boot: sends FE, the wake-up TerminateSession (id 0) and the boot Log
 * "boot: firmware <v> board <b> reset-cause <c>", which also goes to the console.
 */
int rpc_server_start(struct rpc_server *server);

/*
 * Feed received bytes, in any chunking. Complete requests are handled, and their replies written,
 * before this returns. Not reentrant: do not call it from a handler or concurrently.
 */
void rpc_server_feed(struct rpc_server *server, const uint8_t *data, size_t len);

/* Send a Log message (id 0) to the host. Not from an ISR while rpc_server_feed() runs. */
int rpc_server_log(struct rpc_server *server, const char *text, size_t len);

/* Counters of received frames by outcome. */
const struct rpc_unframer_stats *rpc_server_stats(const struct rpc_server *server);

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_SERVER_H_ */
