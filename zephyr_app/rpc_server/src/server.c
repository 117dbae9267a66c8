/*
 * The RPC server: glue between framing, session and dispatcher.
 */
#include <string.h>

#include <rpc_server/server.h>

/* Send one line to the platform's console, if it has one. */
static void server_console(struct rpc_server *server, const struct rpc_text *line)
{
	const struct rpc_platform *platform = server->platform;

	if (platform != NULL && platform->console != NULL) {
		platform->console(platform->ctx, line->buf, line->len);
	}
}

static void console_begin(struct rpc_server *server, struct rpc_text *line)
{
	rpc_text_init(line, server->console_line, sizeof(server->console_line));
}

/* Session send hook: one frame = 3-byte header from the stack + body from where it lies. */
static int server_send(void *ctx, uint16_t id, uint8_t type, const uint8_t *body, size_t len)
{
	struct rpc_server *server = ctx;
	uint8_t header[RPC_SESSION_HEADER_LEN];
	int err;

	if (len > SIZE_MAX - RPC_SESSION_HEADER_LEN) {
		return RPC_ERR_INVAL;
	}
	header[0] = (uint8_t)(id & 0xFFu);
	header[1] = (uint8_t)(id >> 8);
	header[2] = type;
	/*
	 * A new session starts on a clean line (docs/protocol.md 1.2): the StartSessionReply gets the
	 * leading FE, so a lone FF that a torn frame left in the host's unframer cannot pair with the
	 * reply's FF FD and swallow it.
	 */
	if (type == RPC_SESSION_START_REPLY) {
		rpc_framer_reset(&server->framer);
	}
	err = rpc_framer_start(&server->framer, RPC_SESSION_HEADER_LEN + len);
	if (err == 0) {
		err = rpc_framer_write_chunk(&server->framer, header, sizeof(header));
	}
	if (err == 0 && len > 0) {
		err = rpc_framer_write_chunk(&server->framer, body, len);
	}
	if (err == 0) {
		err = rpc_framer_finish(&server->framer);
	}
	return err;
}

static void server_normal(void *ctx, const uint8_t *body, size_t len)
{
	struct rpc_server *server = ctx;
	size_t reply_len = rpc_dispatch_request(&server->dispatcher, body, len, server->tx_buf,
						sizeof(server->tx_buf));

	if (reply_len > 0) {
		(void)rpc_session_send_normal(&server->session, server->tx_buf, reply_len);
	}
}

static void server_host_log(void *ctx, const uint8_t *text, size_t len)
{
	struct rpc_server *server = ctx;
	struct rpc_text line;

	console_begin(server, &line);
	rpc_text_str(&line, "host log: ");
	rpc_text_mem(&line, (const char *)text, len);
	server_console(server, &line);
}

static void server_state_changed(void *ctx, enum rpc_session_state state, uint16_t id)
{
	struct rpc_server *server = ctx;
	struct rpc_text line;

	console_begin(server, &line);
	switch (state) {
	case RPC_SESSION_ESTABLISHED:
		rpc_text_str(&line, "session established id=0x");
		rpc_text_hex(&line, id, 4);
		break;
	case RPC_SESSION_INIT_SENT:
		rpc_text_str(&line, "session init sent");
		break;
	case RPC_SESSION_NO_SESSION:
	default:
		rpc_text_str(&line, "session closed");
		break;
	}
	server_console(server, &line);
}

/* Dispatcher log hook (rpc.log): a Log to the host, and the same line on the console. */
static int server_rpc_log(void *ctx, const uint8_t *text, size_t len)
{
	struct rpc_server *server = ctx;
	struct rpc_text line;

	console_begin(server, &line);
	rpc_text_str(&line, "rpc.log: ");
	rpc_text_mem(&line, (const char *)text, len);
	server_console(server, &line);
	return rpc_session_send_log(&server->session, text, len);
}

static const struct rpc_session_ops server_session_ops = {
	.send = server_send,
	.normal = server_normal,
	.log = server_host_log,
	.state_changed = server_state_changed,
};

static void server_deliver(void *ctx, const uint8_t *payload, size_t len)
{
	struct rpc_server *server = ctx;

	rpc_session_receive(&server->session, payload, len);
}

int rpc_server_init(struct rpc_server *server, const struct rpc_server_config *config)
{
	if (server == NULL || config == NULL || config->write == NULL ||
	    (config->functions == NULL && config->num_functions > 0)) {
		return RPC_ERR_INVAL;
	}
	memset(server, 0, sizeof(*server));
	server->platform = config->platform;
	rpc_framer_init(&server->framer, config->write, config->write_ctx);
	rpc_unframer_init(&server->unframer, server->rx_buf, sizeof(server->rx_buf),
			  server_deliver, server);
	rpc_session_init(&server->session, &server_session_ops, server, config->nonce_seed);
	server->dispatcher.builtins = rpc_builtin_functions;
	server->dispatcher.num_builtins = RPC_BUILTIN_COUNT;
	server->dispatcher.functions = config->functions;
	server->dispatcher.num_functions = config->num_functions;
	server->dispatcher.platform = config->platform;
	server->dispatcher.log = server_rpc_log;
	server->dispatcher.log_ctx = server;
	server->dispatcher.user_ctx = config->user_ctx;
	return 0;
}

int rpc_server_start(struct rpc_server *server)
{
	const struct rpc_platform *platform = server->platform;
	struct rpc_text line;
	int err;

	rpc_framer_reset(&server->framer);
	rpc_unframer_reset(&server->unframer);
	err = rpc_session_start(&server->session);

	console_begin(server, &line);
	rpc_text_str(&line, "boot: firmware ");
	rpc_text_str(&line, platform != NULL ? platform->firmware_version : NULL);
	rpc_text_str(&line, " board ");
	rpc_text_str(&line, platform != NULL ? platform->board : NULL);
	rpc_text_str(&line, " reset-cause ");
	rpc_text_str(&line, platform != NULL ? platform->reset_cause : NULL);
	server_console(server, &line);
	if (err == 0) {
		err = rpc_session_send_log(&server->session, (const uint8_t *)line.buf, line.len);
	}
	return err;
}

void rpc_server_feed(struct rpc_server *server, const uint8_t *data, size_t len)
{
	rpc_unframer_feed(&server->unframer, data, len);
}

int rpc_server_log(struct rpc_server *server, const char *text, size_t len)
{
	if (text == NULL && len > 0) {
		return RPC_ERR_INVAL;
	}
	return rpc_session_send_log(&server->session, (const uint8_t *)text, len);
}

const struct rpc_unframer_stats *rpc_server_stats(const struct rpc_server *server)
{
	return &server->unframer.stats;
}
