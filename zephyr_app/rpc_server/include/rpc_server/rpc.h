/*
 * RPC layer (docs/protocol.md section 3): a subset of TVM's MinRPC.
 *
 *     u64 nbytes | i32 code | body
 *
 * The dispatcher answers every request, well-formed or not, with exactly one Return or Exception
 * packet, built in a caller-provided reply buffer. A malformed request is answered with an
 * Exception whose message names the problem, never with a hang or an assertion.
 *
 * Functions are plain handlers in a table; a handle is the index in the table plus one, counted
 * over the built-ins first and then the application's own table. A handler reads its arguments
 * through accessors that check index and type and, when they fail, raise the Exception themselves,
 * so that every function reports argument errors with the same wording:
 *
 *     static void add(struct rpc_call *call)
 *     {
 *             int64_t a, b;
 *
 *             if (rpc_call_check_num_args(call, 2) != 0 ||
 *                 rpc_call_arg_int(call, 0, &a) != 0 || rpc_call_arg_int(call, 1, &b) != 0) {
 *                     return;
 *             }
 *             rpc_call_return_int(call, a + b);
 *     }
 *
 * Argument data (str, bytes) points into the received packet and is valid only during the call.
 * The first Exception raised sticks: a later return or raise does not replace it, so an argument
 * error cannot be masked by a handler that ignores a return code. A handler that sets nothing
 * returns null.
 */
#ifndef RPC_SERVER_RPC_H_
#define RPC_SERVER_RPC_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rpc_code {
	RPC_CODE_CALL_FUNC = 3,
	RPC_CODE_RETURN = 4,
	RPC_CODE_EXCEPTION = 5,
	RPC_CODE_GET_GLOBAL_FUNC = 9,
};

enum rpc_type {
	RPC_TYPE_INT = 0,
	RPC_TYPE_FLOAT = 2,
	RPC_TYPE_NULL = 4,
	RPC_TYPE_HANDLE = 10,
	RPC_TYPE_STR = 11,
	RPC_TYPE_BYTES = 12,
};

/* Smallest reply buffer the dispatcher accepts: room for any header and a short message. */
#define RPC_REPLY_MIN_CAPACITY 64

struct rpc_call;
struct rpc_platform;

typedef void (*rpc_handler_fn)(struct rpc_call *call);

/* One callable function. */
struct rpc_function {
	const char *name;
	rpc_handler_fn handler;
};

/*
 * Bounded text builder. Appends that do not fit are cut and set @c truncated; it never writes
 * past @c cap and is not NUL-terminated (the wire has lengths, not terminators).
 */
struct rpc_text {
	char *buf;
	size_t cap;
	size_t len;
	bool truncated;
};

void rpc_text_init(struct rpc_text *text, char *buf, size_t cap);
void rpc_text_mem(struct rpc_text *text, const char *data, size_t len);
void rpc_text_str(struct rpc_text *text, const char *str);
void rpc_text_u64(struct rpc_text *text, uint64_t value);
void rpc_text_i64(struct rpc_text *text, int64_t value);
/* @p digits lowercase hex digits of @p value, most significant first (1..16). */
void rpc_text_hex(struct rpc_text *text, uint64_t value, unsigned int digits);

/* Everything the dispatcher needs; kept constant while requests are being handled. */
struct rpc_dispatcher {
	/* The built-ins (handles 1..num_builtins), then the application's table. */
	const struct rpc_function *builtins;
	size_t num_builtins;
	const struct rpc_function *functions;
	size_t num_functions;
	/* Handed to handlers through rpc_call_platform(); may be NULL. */
	const struct rpc_platform *platform;
	/* Sends a Log message (for rpc.log); may be NULL. */
	int (*log)(void *ctx, const uint8_t *text, size_t len);
	void *log_ctx;
	/* Handed to handlers through rpc_call_user_ctx(). */
	void *user_ctx;
};

/* State of one call; private, use the accessors below. */
struct rpc_call {
	const struct rpc_dispatcher *dispatcher;
	const struct rpc_function *function;
	int32_t num_args;
	const uint8_t *type_codes;
	const uint8_t *values;
	size_t values_len;
	uint8_t *reply;
	size_t reply_cap;
	size_t reply_len;
	int reply_kind;
	uint32_t reserved_type;
	struct rpc_text message;
	struct rpc_text discard;
};

/*
 * Answer the RPC packet @p request with exactly one reply packet, built in @p reply (at least
 * RPC_REPLY_MIN_CAPACITY bytes; RPC_SERVER_MAX_PACKET - 3 lets rpc.echo reach max_payload).
 * Returns the reply length, or 0 if there is nothing to send: @p reply_cap is too small, or the
 * function is rpc.reset and the platform's reset hook returned (a reset that was scheduled rather
 * than done at once).
 */
size_t rpc_dispatch_request(const struct rpc_dispatcher *dispatcher, const uint8_t *request,
			    size_t request_len, uint8_t *reply, size_t reply_cap);

/* Function for @p handle (1-based over built-ins then application table), or NULL. */
const struct rpc_function *rpc_dispatch_lookup(const struct rpc_dispatcher *dispatcher,
					       uint64_t handle);

/* Handle of the function called @p name (@p len bytes), or 0 if there is none. */
uint64_t rpc_dispatch_find(const struct rpc_dispatcher *dispatcher, const char *name, size_t len);

/* ---- inside a handler ---------------------------------------------------------------------- */

const char *rpc_call_name(const struct rpc_call *call);
const struct rpc_platform *rpc_call_platform(const struct rpc_call *call);
void *rpc_call_user_ctx(const struct rpc_call *call);

size_t rpc_call_num_args(const struct rpc_call *call);
/* Type code of argument @p index, or -1 if there is no such argument. */
int rpc_call_arg_type(const struct rpc_call *call, size_t index);

/* Raises "<name>: expected N arguments, got M" and returns RPC_ERR_TYPE unless there are @p n. */
int rpc_call_check_num_args(struct rpc_call *call, size_t n);

/*
 * Argument getters: 0 on success; RPC_ERR_TYPE after raising "<name>: argument I: expected T,
 * got U" (or "...: missing") if the argument is absent or of another type.
 */
int rpc_call_arg_int(struct rpc_call *call, size_t index, int64_t *out);
int rpc_call_arg_float(struct rpc_call *call, size_t index, double *out);
int rpc_call_arg_str(struct rpc_call *call, size_t index, const char **str, size_t *len);
int rpc_call_arg_bytes(struct rpc_call *call, size_t index, const uint8_t **data, size_t *len);

/*
 * Reply setters. Each replaces an earlier return value; none replaces an Exception. A value that
 * does not fit the reply buffer raises "<name>: return value too large: N bytes, room for M" and
 * returns RPC_ERR_NOSPC.
 */
int rpc_call_return_null(struct rpc_call *call);
int rpc_call_return_int(struct rpc_call *call, int64_t value);
int rpc_call_return_float(struct rpc_call *call, double value);
int rpc_call_return_str(struct rpc_call *call, const char *str, size_t len);
int rpc_call_return_bytes(struct rpc_call *call, const uint8_t *data, size_t len);

/*
 * Build a str or bytes return value in place, without a copy: returns where up to *@p cap bytes
 * may be written (NULL if an Exception is set or @p type is neither str nor bytes); then
 * rpc_call_return_commit() with the length written.
 */
uint8_t *rpc_call_return_reserve(struct rpc_call *call, enum rpc_type type, size_t *cap);
int rpc_call_return_commit(struct rpc_call *call, size_t len);

/* Raise an Exception with the NUL-terminated @p message (cut if longer than the reply buffer). */
void rpc_call_raise(struct rpc_call *call, const char *message);
void rpc_call_raise_len(struct rpc_call *call, const char *message, size_t len);
/*
 * Raise an Exception whose message is built with the rpc_text_* functions on the returned
 * builder, in place in the reply buffer. If an Exception is already set, the builder discards.
 */
struct rpc_text *rpc_call_raise_text(struct rpc_call *call);

/*
 * Send no reply at all. Only for a function after which the device restarts (rpc.reset): the
 * protocol says it never replies. Ignored once an Exception is set, since a request that failed
 * must be answered.
 */
void rpc_call_suppress_reply(struct rpc_call *call);

/* True once an Exception has been raised for this call. */
bool rpc_call_failed(const struct rpc_call *call);

/* Send a Log message now, before the reply (rpc.log). RPC_ERR_INVAL if there is no log sink. */
int rpc_call_log(struct rpc_call *call, const uint8_t *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_RPC_H_ */
