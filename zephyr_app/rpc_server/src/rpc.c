/*
 * RPC dispatcher (docs/protocol.md section 3).
 *
 * A request is validated completely (header, nbytes, argument list structure) before any handler
 * runs, so handlers can walk the argument list without re-checking lengths. The reply is written
 * in place in the caller's buffer: header at offset 0, the single value at REPLY_VALUE.
 */
#include <string.h>

#include <rpc_server/config.h>
#include <rpc_server/rpc.h>

/* Reply packet layout: u64 nbytes | i32 code | i32 num_args (1) | i32 type | value. */
#define REPLY_VALUE 20u
/* Start of the data of a str or bytes value, after its u64 length. */
#define REPLY_DATA 28u

enum {
	REPLY_NONE = 0,
	REPLY_RETURN,
	REPLY_EXCEPTION,
	REPLY_SUPPRESSED,
};

/* ---- little-endian helpers --------------------------------------------------------------- */

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < 8; i++) {
		v |= (uint64_t)p[i] << (8u * i);
	}
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Two's complement conversion without implementation-defined casts. */
static int32_t get_i32(const uint8_t *p)
{
	uint32_t u = get_u32(p);

	if (u <= (uint32_t)INT32_MAX) {
		return (int32_t)u;
	}
	return (int32_t)(u - (uint32_t)INT32_MAX - 1u) + INT32_MIN;
}

static int64_t u64_to_i64(uint64_t u)
{
	if (u <= (uint64_t)INT64_MAX) {
		return (int64_t)u;
	}
	return (int64_t)(u - (uint64_t)INT64_MAX - 1u) + INT64_MIN;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	unsigned int i;

	for (i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8u * i));
	}
}

static void put_u32(uint8_t *p, uint32_t v)
{
	unsigned int i;

	for (i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8u * i));
	}
}

/* ---- text builder ------------------------------------------------------------------------ */

void rpc_text_init(struct rpc_text *text, char *buf, size_t cap)
{
	text->buf = buf;
	text->cap = buf != NULL ? cap : 0;
	text->len = 0;
	text->truncated = false;
}

void rpc_text_mem(struct rpc_text *text, const char *data, size_t len)
{
	size_t room = text->cap - text->len;

	if (len > room) {
		len = room;
		text->truncated = true;
	}
	if (len > 0) {
		memcpy(text->buf + text->len, data, len);
		text->len += len;
	}
}

void rpc_text_str(struct rpc_text *text, const char *str)
{
	if (str != NULL) {
		rpc_text_mem(text, str, strlen(str));
	}
}

void rpc_text_u64(struct rpc_text *text, uint64_t value)
{
	char digits[20];
	size_t n = 0;

	do {
		digits[sizeof(digits) - 1 - n] = (char)('0' + (int)(value % 10u));
		value /= 10u;
		n++;
	} while (value != 0);
	rpc_text_mem(text, digits + sizeof(digits) - n, n);
}

void rpc_text_i64(struct rpc_text *text, int64_t value)
{
	if (value < 0) {
		rpc_text_mem(text, "-", 1);
		/* -(value + 1) + 1 avoids overflowing on INT64_MIN. */
		rpc_text_u64(text, (uint64_t)(-(value + 1)) + 1u);
	} else {
		rpc_text_u64(text, (uint64_t)value);
	}
}

void rpc_text_hex(struct rpc_text *text, uint64_t value, unsigned int digits)
{
	static const char hex[] = "0123456789abcdef";
	char out[16];
	unsigned int i;

	if (digits == 0 || digits > 16) {
		digits = 16;
	}
	for (i = 0; i < digits; i++) {
		out[digits - 1 - i] = hex[(value >> (4u * i)) & 0xFu];
	}
	rpc_text_mem(text, out, digits);
}

/* ---- argument lists ---------------------------------------------------------------------- */

static const char *type_name(uint32_t type)
{
	switch (type) {
	case RPC_TYPE_INT:
		return "int";
	case RPC_TYPE_FLOAT:
		return "float";
	case RPC_TYPE_NULL:
		return "null";
	case RPC_TYPE_HANDLE:
		return "handle";
	case RPC_TYPE_STR:
		return "str";
	case RPC_TYPE_BYTES:
		return "bytes";
	default:
		return "unknown";
	}
}

/*
 * Size of the value of @p type at @p p. Only for an argument list that parse_args() accepted:
 * the lengths were checked there, so there are no bounds checks here.
 */
static size_t value_size(uint32_t type, const uint8_t *p)
{
	switch (type) {
	case RPC_TYPE_NULL:
		return 0;
	case RPC_TYPE_STR:
	case RPC_TYPE_BYTES:
		return 8u + (size_t)get_u64(p);
	default:
		return 8;
	}
}

/*
 * Check the structure of the argument list in @p body and record it in @p call. On error raises
 * an Exception naming the problem and returns RPC_ERR_INVAL.
 */
static int parse_args(struct rpc_call *call, const uint8_t *body, size_t len)
{
	struct rpc_text *msg;
	int32_t num;
	size_t i, left, pos;
	const uint8_t *types;
	const uint8_t *values;

	if (len < 4) {
		rpc_call_raise(call, "truncated argument list: no argument count");
		return RPC_ERR_INVAL;
	}
	num = get_i32(body);
	if (num < 0) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "bad argument count: ");
		rpc_text_i64(msg, num);
		return RPC_ERR_INVAL;
	}
	left = len - 4;
	/* Divide rather than multiply: num * 4 can overflow a 32-bit size_t. */
	if ((size_t)num > left / 4u) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "truncated argument list: ");
		rpc_text_i64(msg, num);
		rpc_text_str(msg, " type codes, ");
		rpc_text_u64(msg, left);
		rpc_text_str(msg, " bytes left");
		return RPC_ERR_INVAL;
	}
	types = body + 4;
	values = types + 4u * (size_t)num;
	left -= 4u * (size_t)num;

	pos = 0;
	for (i = 0; i < (size_t)num; i++) {
		uint32_t type = get_u32(types + 4u * i);
		size_t need;

		switch (type) {
		case RPC_TYPE_NULL:
			need = 0;
			break;
		case RPC_TYPE_INT:
		case RPC_TYPE_FLOAT:
		case RPC_TYPE_HANDLE:
		case RPC_TYPE_STR:
		case RPC_TYPE_BYTES:
			need = 8;
			break;
		default:
			msg = rpc_call_raise_text(call);
			rpc_text_str(msg, "unknown type code: ");
			rpc_text_i64(msg, get_i32(types + 4u * i));
			rpc_text_str(msg, " (argument ");
			rpc_text_u64(msg, i);
			rpc_text_str(msg, ")");
			return RPC_ERR_INVAL;
		}
		if (need > left - pos) {
			msg = rpc_call_raise_text(call);
			rpc_text_str(msg, "truncated argument list: argument ");
			rpc_text_u64(msg, i);
			rpc_text_str(msg, " (");
			rpc_text_str(msg, type_name(type));
			rpc_text_str(msg, ") needs 8 bytes, ");
			rpc_text_u64(msg, left - pos);
			rpc_text_str(msg, " left");
			return RPC_ERR_INVAL;
		}
		pos += need;
		if (type == RPC_TYPE_STR || type == RPC_TYPE_BYTES) {
			uint64_t n = get_u64(values + pos - 8u);

			if (n > (uint64_t)(left - pos)) {
				msg = rpc_call_raise_text(call);
				rpc_text_str(msg, "length past end: argument ");
				rpc_text_u64(msg, i);
				rpc_text_str(msg, " (");
				rpc_text_str(msg, type_name(type));
				rpc_text_str(msg, ") has length ");
				rpc_text_u64(msg, n);
				rpc_text_str(msg, ", ");
				rpc_text_u64(msg, left - pos);
				rpc_text_str(msg, " bytes left");
				return RPC_ERR_INVAL;
			}
			pos += (size_t)n;
		}
	}
	if (pos != left) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "trailing bytes after arguments: ");
		rpc_text_u64(msg, left - pos);
		return RPC_ERR_INVAL;
	}
	call->num_args = num;
	call->type_codes = types;
	call->values = values;
	call->values_len = left;
	return 0;
}

/* Start of the value of argument @p index, which exists. */
static const uint8_t *arg_value(const struct rpc_call *call, size_t index)
{
	const uint8_t *p = call->values;
	size_t i;

	for (i = 0; i < index; i++) {
		p += value_size(get_u32(call->type_codes + 4u * i), p);
	}
	return p;
}

/* ---- reply ------------------------------------------------------------------------------- */

static void reply_header(struct rpc_call *call, int32_t code, uint32_t type, size_t value_len)
{
	size_t total = REPLY_VALUE + value_len;

	put_u64(call->reply, (uint64_t)(total - 8u));
	put_u32(call->reply + 8, (uint32_t)code);
	put_u32(call->reply + 12, 1);
	put_u32(call->reply + 16, type);
	call->reply_len = total;
}

/* Set the reply of a request that reached no handler, or finish one. */
static size_t reply_finish(struct rpc_call *call)
{
	if (call->reply_kind == REPLY_EXCEPTION) {
		put_u64(call->reply + REPLY_VALUE, (uint64_t)call->message.len);
		reply_header(call, RPC_CODE_EXCEPTION, RPC_TYPE_STR, 8u + call->message.len);
	} else if (call->reply_kind == REPLY_NONE) {
		reply_header(call, RPC_CODE_RETURN, RPC_TYPE_NULL, 0);
	} else if (call->reply_kind == REPLY_SUPPRESSED) {
		return 0;
	}
	return call->reply_len;
}

static int raise_too_large(struct rpc_call *call, size_t len, size_t room)
{
	struct rpc_text *msg = rpc_call_raise_text(call);

	rpc_text_str(msg, rpc_call_name(call));
	rpc_text_str(msg, ": return value too large: ");
	rpc_text_u64(msg, len);
	rpc_text_str(msg, " bytes, room for ");
	rpc_text_u64(msg, room);
	return RPC_ERR_NOSPC;
}

int rpc_call_return_null(struct rpc_call *call)
{
	if (call->reply_kind == REPLY_EXCEPTION) {
		return RPC_ERR_INVAL;
	}
	call->reply_kind = REPLY_RETURN;
	reply_header(call, RPC_CODE_RETURN, RPC_TYPE_NULL, 0);
	return 0;
}

static int return_u64(struct rpc_call *call, uint32_t type, uint64_t bits)
{
	if (call->reply_kind == REPLY_EXCEPTION) {
		return RPC_ERR_INVAL;
	}
	call->reply_kind = REPLY_RETURN;
	put_u64(call->reply + REPLY_VALUE, bits);
	reply_header(call, RPC_CODE_RETURN, type, 8);
	return 0;
}

int rpc_call_return_int(struct rpc_call *call, int64_t value)
{
	return return_u64(call, RPC_TYPE_INT, (uint64_t)value);
}

int rpc_call_return_float(struct rpc_call *call, double value)
{
	uint64_t bits;

	/* IEEE 754 binary64 with the same byte order as integers, as on every target we build. */
	memcpy(&bits, &value, sizeof(bits));
	return return_u64(call, RPC_TYPE_FLOAT, bits);
}

uint8_t *rpc_call_return_reserve(struct rpc_call *call, enum rpc_type type, size_t *cap)
{
	if (call->reply_kind == REPLY_EXCEPTION ||
	    (type != RPC_TYPE_STR && type != RPC_TYPE_BYTES)) {
		*cap = 0;
		return NULL;
	}
	/* Remember the type now; the value is committed by rpc_call_return_commit(). */
	call->reserved_type = (uint32_t)type;
	*cap = call->reply_cap - REPLY_DATA;
	return call->reply + REPLY_DATA;
}

int rpc_call_return_commit(struct rpc_call *call, size_t len)
{
	uint32_t type = call->reserved_type;

	if (call->reply_kind == REPLY_EXCEPTION ||
	    (type != RPC_TYPE_STR && type != RPC_TYPE_BYTES)) {
		return RPC_ERR_INVAL;
	}
	if (len > call->reply_cap - REPLY_DATA) {
		return raise_too_large(call, len, call->reply_cap - REPLY_DATA);
	}
	call->reply_kind = REPLY_RETURN;
	put_u64(call->reply + REPLY_VALUE, (uint64_t)len);
	reply_header(call, RPC_CODE_RETURN, type, 8u + len);
	return 0;
}

static int return_data(struct rpc_call *call, enum rpc_type type, const void *data, size_t len)
{
	size_t cap;
	uint8_t *dst = rpc_call_return_reserve(call, type, &cap);

	if (dst == NULL) {
		return RPC_ERR_INVAL;
	}
	if (len > cap) {
		return raise_too_large(call, len, cap);
	}
	if (len > 0) {
		memmove(dst, data, len);
	}
	return rpc_call_return_commit(call, len);
}

int rpc_call_return_str(struct rpc_call *call, const char *str, size_t len)
{
	return return_data(call, RPC_TYPE_STR, str, len);
}

int rpc_call_return_bytes(struct rpc_call *call, const uint8_t *data, size_t len)
{
	return return_data(call, RPC_TYPE_BYTES, data, len);
}

struct rpc_text *rpc_call_raise_text(struct rpc_call *call)
{
	if (call->reply_kind == REPLY_EXCEPTION) {
		rpc_text_init(&call->discard, NULL, 0);
		return &call->discard;
	}
	call->reply_kind = REPLY_EXCEPTION;
	rpc_text_init(&call->message, (char *)call->reply + REPLY_DATA,
		      call->reply_cap - REPLY_DATA);
	return &call->message;
}

void rpc_call_raise_len(struct rpc_call *call, const char *message, size_t len)
{
	rpc_text_mem(rpc_call_raise_text(call), message, len);
}

void rpc_call_raise(struct rpc_call *call, const char *message)
{
	rpc_text_str(rpc_call_raise_text(call), message);
}

void rpc_call_suppress_reply(struct rpc_call *call)
{
	if (call->reply_kind != REPLY_EXCEPTION) {
		call->reply_kind = REPLY_SUPPRESSED;
	}
}

bool rpc_call_failed(const struct rpc_call *call)
{
	return call->reply_kind == REPLY_EXCEPTION;
}

/* ---- handler accessors ------------------------------------------------------------------- */

const char *rpc_call_name(const struct rpc_call *call)
{
	if (call->function == NULL || call->function->name == NULL) {
		return "?";
	}
	return call->function->name;
}

const struct rpc_platform *rpc_call_platform(const struct rpc_call *call)
{
	return call->dispatcher->platform;
}

void *rpc_call_user_ctx(const struct rpc_call *call)
{
	return call->dispatcher->user_ctx;
}

size_t rpc_call_num_args(const struct rpc_call *call)
{
	return (size_t)call->num_args;
}

int rpc_call_arg_type(const struct rpc_call *call, size_t index)
{
	if (index >= (size_t)call->num_args) {
		return -1;
	}
	return (int)get_u32(call->type_codes + 4u * index);
}

int rpc_call_check_num_args(struct rpc_call *call, size_t n)
{
	struct rpc_text *msg;

	if ((size_t)call->num_args == n) {
		return 0;
	}
	msg = rpc_call_raise_text(call);
	rpc_text_str(msg, rpc_call_name(call));
	rpc_text_str(msg, ": expected ");
	rpc_text_u64(msg, n);
	rpc_text_str(msg, n == 1 ? " argument, got " : " arguments, got ");
	rpc_text_u64(msg, (uint64_t)call->num_args);
	return RPC_ERR_TYPE;
}

/* Value of argument @p index if it has type @p want; otherwise raise and return NULL. */
static const uint8_t *arg_checked(struct rpc_call *call, size_t index, uint32_t want)
{
	int type = rpc_call_arg_type(call, index);
	struct rpc_text *msg;

	if (type == (int)want) {
		return arg_value(call, index);
	}
	msg = rpc_call_raise_text(call);
	rpc_text_str(msg, rpc_call_name(call));
	rpc_text_str(msg, ": argument ");
	rpc_text_u64(msg, index);
	rpc_text_str(msg, ": expected ");
	rpc_text_str(msg, type_name(want));
	if (type < 0) {
		rpc_text_str(msg, ", missing");
	} else {
		rpc_text_str(msg, ", got ");
		rpc_text_str(msg, type_name((uint32_t)type));
	}
	return NULL;
}

int rpc_call_arg_int(struct rpc_call *call, size_t index, int64_t *out)
{
	const uint8_t *p = arg_checked(call, index, RPC_TYPE_INT);

	if (p == NULL) {
		return RPC_ERR_TYPE;
	}
	*out = u64_to_i64(get_u64(p));
	return 0;
}

int rpc_call_arg_float(struct rpc_call *call, size_t index, double *out)
{
	const uint8_t *p = arg_checked(call, index, RPC_TYPE_FLOAT);
	uint64_t bits;

	if (p == NULL) {
		return RPC_ERR_TYPE;
	}
	bits = get_u64(p);
	memcpy(out, &bits, sizeof(*out));
	return 0;
}

static int arg_data(struct rpc_call *call, size_t index, uint32_t type, const uint8_t **data,
		    size_t *len)
{
	const uint8_t *p = arg_checked(call, index, type);

	if (p == NULL) {
		return RPC_ERR_TYPE;
	}
	*len = (size_t)get_u64(p);
	*data = p + 8;
	return 0;
}

int rpc_call_arg_str(struct rpc_call *call, size_t index, const char **str, size_t *len)
{
	const uint8_t *data;
	int err = arg_data(call, index, RPC_TYPE_STR, &data, len);

	if (err == 0) {
		*str = (const char *)data;
	}
	return err;
}

int rpc_call_arg_bytes(struct rpc_call *call, size_t index, const uint8_t **data, size_t *len)
{
	return arg_data(call, index, RPC_TYPE_BYTES, data, len);
}

int rpc_call_log(struct rpc_call *call, const uint8_t *text, size_t len)
{
	const struct rpc_dispatcher *d = call->dispatcher;

	if (d->log == NULL) {
		return RPC_ERR_INVAL;
	}
	return d->log(d->log_ctx, text, len);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

const struct rpc_function *rpc_dispatch_lookup(const struct rpc_dispatcher *dispatcher,
					       uint64_t handle)
{
	if (handle == 0) {
		return NULL;
	}
	handle--;
	if (handle < dispatcher->num_builtins) {
		return &dispatcher->builtins[handle];
	}
	handle -= dispatcher->num_builtins;
	if (handle < dispatcher->num_functions) {
		return &dispatcher->functions[handle];
	}
	return NULL;
}

static bool name_equals(const char *entry, const char *name, size_t len)
{
	return entry != NULL && strlen(entry) == len && memcmp(entry, name, len) == 0;
}

uint64_t rpc_dispatch_find(const struct rpc_dispatcher *dispatcher, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < dispatcher->num_builtins; i++) {
		if (name_equals(dispatcher->builtins[i].name, name, len)) {
			return (uint64_t)i + 1u;
		}
	}
	for (i = 0; i < dispatcher->num_functions; i++) {
		if (name_equals(dispatcher->functions[i].name, name, len)) {
			return (uint64_t)dispatcher->num_builtins + i + 1u;
		}
	}
	return 0;
}

static void get_global_func(struct rpc_call *call, const uint8_t *body, size_t len)
{
	const char *name;
	size_t name_len;
	uint64_t handle;
	struct rpc_text *msg;

	if (parse_args(call, body, len) != 0) {
		return;
	}
	if (call->num_args != 1 || rpc_call_arg_type(call, 0) != RPC_TYPE_STR) {
		rpc_call_raise(call, "GetGlobalFunc takes one str argument");
		return;
	}
	(void)rpc_call_arg_str(call, 0, &name, &name_len);
	handle = rpc_dispatch_find(call->dispatcher, name, name_len);
	if (handle == 0) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "no such function: ");
		rpc_text_mem(msg, name, name_len);
		return;
	}
	(void)return_u64(call, RPC_TYPE_HANDLE, handle);
}

static void call_func(struct rpc_call *call, const uint8_t *body, size_t len)
{
	const struct rpc_function *function;
	uint64_t handle;
	struct rpc_text *msg;

	if (len < 8) {
		rpc_call_raise(call, "truncated CallFunc: no handle");
		return;
	}
	handle = get_u64(body);
	if (parse_args(call, body + 8, len - 8) != 0) {
		return;
	}
	function = rpc_dispatch_lookup(call->dispatcher, handle);
	if (function == NULL || function->handler == NULL) {
		msg = rpc_call_raise_text(call);
		rpc_text_str(msg, "unknown handle: ");
		rpc_text_u64(msg, handle);
		return;
	}
	call->function = function;
	function->handler(call);
}

size_t rpc_dispatch_request(const struct rpc_dispatcher *dispatcher, const uint8_t *request,
			    size_t request_len, uint8_t *reply, size_t reply_cap)
{
	struct rpc_call call;
	struct rpc_text *msg;
	uint64_t nbytes;
	int32_t code;

	if (reply == NULL || reply_cap < RPC_REPLY_MIN_CAPACITY) {
		return 0;
	}
	memset(&call, 0, sizeof(call));
	call.dispatcher = dispatcher;
	call.reply = reply;
	call.reply_cap = reply_cap;
	call.reply_kind = REPLY_NONE;

	if (request == NULL || request_len < RPC_PACKET_HEADER_LEN) {
		msg = rpc_call_raise_text(&call);
		rpc_text_str(msg, "truncated packet: ");
		rpc_text_u64(msg, request != NULL ? request_len : 0);
		rpc_text_str(msg, " bytes, header needs 12");
		return reply_finish(&call);
	}
	nbytes = get_u64(request);
	if (nbytes != (uint64_t)(request_len - 8u)) {
		msg = rpc_call_raise_text(&call);
		rpc_text_str(msg, "bad nbytes: header says ");
		rpc_text_u64(msg, nbytes);
		rpc_text_str(msg, ", packet has ");
		rpc_text_u64(msg, request_len - 8u);
		return reply_finish(&call);
	}
	code = get_i32(request + 8);
	switch (code) {
	case RPC_CODE_GET_GLOBAL_FUNC:
		get_global_func(&call, request + 12, request_len - 12u);
		break;
	case RPC_CODE_CALL_FUNC:
		call_func(&call, request + 12, request_len - 12u);
		break;
	default:
		msg = rpc_call_raise_text(&call);
		rpc_text_str(msg, "unknown code: ");
		rpc_text_i64(msg, code);
		break;
	}
	return reply_finish(&call);
}
