/*
 * Session layer (docs/protocol.md section 2).
 */
#include <rpc_server/config.h>
#include <rpc_server/session.h>

static void session_set_state(struct rpc_session *session, enum rpc_session_state state,
			      uint16_t id)
{
	session->state = state;
	session->id = id;
	if (session->ops->state_changed != NULL) {
		session->ops->state_changed(session->ctx, state, id);
	}
}

static int session_send(struct rpc_session *session, uint16_t id, uint8_t type,
			const uint8_t *body, size_t len)
{
	return session->ops->send(session->ctx, id, type, body, len);
}

void rpc_session_init(struct rpc_session *session, const struct rpc_session_ops *ops, void *ctx,
		      uint8_t nonce_seed)
{
	session->ops = ops;
	session->ctx = ctx;
	session->state = RPC_SESSION_NO_SESSION;
	session->id = 0;
	session->nonce = nonce_seed;
	session->init_nonce = 0;
}

uint8_t rpc_session_next_nonce(uint8_t nonce)
{
	uint8_t next = (uint8_t)(5u * nonce + 1u);

	/* 0 is not a valid nonce; one more step never gives 0 again (5 * 0 + 1 = 1). */
	if (next == 0) {
		next = 1;
	}
	return next;
}

static uint8_t session_take_nonce(struct rpc_session *session)
{
	session->nonce = rpc_session_next_nonce(session->nonce);
	return session->nonce;
}

int rpc_session_start(struct rpc_session *session)
{
	/* A boot, not a state change: no state_changed callback. */
	session->state = RPC_SESSION_NO_SESSION;
	session->id = 0;
	return session_send(session, 0, RPC_SESSION_TERMINATE, NULL, 0);
}

int rpc_session_initiate(struct rpc_session *session)
{
	static const uint8_t version = RPC_SESSION_VERSION;
	uint8_t nonce = session_take_nonce(session);

	session->init_nonce = nonce;
	session_set_state(session, RPC_SESSION_INIT_SENT, 0);
	return session_send(session, nonce, RPC_SESSION_START_INIT, &version, 1);
}

int rpc_session_terminate(struct rpc_session *session)
{
	uint16_t id = session->id;

	session_set_state(session, RPC_SESSION_NO_SESSION, 0);
	return session_send(session, id, RPC_SESSION_TERMINATE, NULL, 0);
}

/* Answer a StartSessionInit as responder: new nonce, reply, Established with the new id. */
static void session_answer_init(struct rpc_session *session, uint8_t initiator_nonce)
{
	static const uint8_t version = RPC_SESSION_VERSION;
	uint16_t id = (uint16_t)(initiator_nonce | ((unsigned int)session_take_nonce(session) << 8));

	/*
	 * Established before the reply goes out: the host may send its first Normal as soon as it
	 * has the reply, and the old id is dead from now on whatever happens to the send.
	 */
	session_set_state(session, RPC_SESSION_ESTABLISHED, id);
	(void)session_send(session, id, RPC_SESSION_START_REPLY, &version, 1);
}

static bool body_is_version(const uint8_t *body, size_t len)
{
	return len == 1 && body[0] == RPC_SESSION_VERSION;
}

void rpc_session_receive(struct rpc_session *session, const uint8_t *payload, size_t len)
{
	uint16_t id;
	uint8_t type;
	const uint8_t *body;
	size_t body_len;

	if (payload == NULL || len < RPC_SESSION_HEADER_LEN) {
		return;
	}
	id = (uint16_t)(payload[0] | ((unsigned int)payload[1] << 8));
	type = payload[2];
	body = payload + RPC_SESSION_HEADER_LEN;
	body_len = len - RPC_SESSION_HEADER_LEN;

	switch (type) {
	case RPC_SESSION_START_INIT: {
		uint8_t peer = (uint8_t)(id & 0xFFu);

		if (peer == 0 || !body_is_version(body, body_len)) {
			return;
		}
		if (session->state == RPC_SESSION_INIT_SENT) {
			/* Both ends initiated: the lower initiator nonce wins. */
			if (peer == session->init_nonce) {
				(void)rpc_session_initiate(session);
				return;
			}
			if (peer > session->init_nonce) {
				return;
			}
		}
		session_answer_init(session, peer);
		return;
	}
	case RPC_SESSION_START_REPLY:
		if (session->state != RPC_SESSION_INIT_SENT ||
		    (id & 0xFFu) != session->init_nonce || (id >> 8) == 0 ||
		    !body_is_version(body, body_len)) {
			return;
		}
		session_set_state(session, RPC_SESSION_ESTABLISHED, id);
		return;
	case RPC_SESSION_TERMINATE:
		if (session->state != RPC_SESSION_NO_SESSION) {
			session_set_state(session, RPC_SESSION_NO_SESSION, 0);
		}
		return;
	case RPC_SESSION_LOG:
		/* In NoSession the current id is 0, so only id 0 is accepted then. */
		if ((id == 0 || id == session->id) && session->ops->log != NULL) {
			session->ops->log(session->ctx, body, body_len);
		}
		return;
	case RPC_SESSION_NORMAL:
		if (session->state == RPC_SESSION_ESTABLISHED && id == session->id) {
			session->ops->normal(session->ctx, body, body_len);
		}
		return;
	default:
		return;
	}
}

int rpc_session_send_log(struct rpc_session *session, const uint8_t *text, size_t len)
{
	return session_send(session, 0, RPC_SESSION_LOG, text, len);
}

int rpc_session_send_normal(struct rpc_session *session, const uint8_t *body, size_t len)
{
	if (session->state != RPC_SESSION_ESTABLISHED) {
		return RPC_ERR_INVAL;
	}
	return session_send(session, session->id, RPC_SESSION_NORMAL, body, len);
}
