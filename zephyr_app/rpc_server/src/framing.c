/*
 * Framing layer: framer and unframer (docs/protocol.md section 1).
 */
#include <string.h>

#include <rpc_server/config.h>
#include <rpc_server/crc16.h>
#include <rpc_server/framing.h>

/*
 * Escaped bytes are collected in a small stack buffer and written in runs, so that a transport
 * sees a few calls per packet rather than one per byte, without a frame-sized copy. Worst case
 * one input byte becomes two wire bytes, hence the flush at size - 1.
 */
#define FRAMER_CHUNK 32

struct framer_out {
	uint8_t buf[FRAMER_CHUNK];
	size_t len;
};

static int framer_flush(struct rpc_framer *framer, struct framer_out *out)
{
	int err = 0;

	if (out->len > 0) {
		err = framer->write(framer->write_ctx, out->buf, out->len);
		out->len = 0;
	}
	return err;
}

/* Append one byte as sent on the wire; @p crc selects whether it is covered by the CRC. */
static int framer_put(struct rpc_framer *framer, struct framer_out *out, uint8_t byte, bool crc)
{
	if (crc) {
		framer->crc = rpc_crc16_byte(byte, framer->crc);
	}
	out->buf[out->len++] = byte;
	if (out->len == sizeof(out->buf)) {
		return framer_flush(framer, out);
	}
	return 0;
}

/* Append one data byte, escaping 0xFF as FF FF. */
static int framer_put_escaped(struct rpc_framer *framer, struct framer_out *out, uint8_t byte,
			      bool crc)
{
	int err;

	if (byte == RPC_FRAME_ESCAPE) {
		err = framer_put(framer, out, RPC_FRAME_ESCAPE, crc);
		if (err != 0) {
			return err;
		}
	}
	return framer_put(framer, out, byte, crc);
}

/*
 * A failed write leaves the peer with an unknown fragment of a packet (maybe a lone FF), so the
 * framer is reset: the next packet starts with FE, which turns such an FF into a no-op.
 */
static int framer_fail(struct rpc_framer *framer, int err)
{
	rpc_framer_reset(framer);
	return err < 0 ? err : RPC_ERR_IO;
}

void rpc_framer_init(struct rpc_framer *framer, rpc_write_fn write, void *write_ctx)
{
	framer->write = write;
	framer->write_ctx = write_ctx;
	rpc_framer_reset(framer);
}

void rpc_framer_reset(struct rpc_framer *framer)
{
	framer->need_nop = true;
	framer->in_packet = false;
	framer->remaining = 0;
	framer->crc = RPC_CRC16_INIT;
}

int rpc_framer_start(struct rpc_framer *framer, size_t payload_len)
{
	struct framer_out out;
	uint32_t len;
	unsigned int i;
	int err;

	if (framer->in_packet || framer->write == NULL || payload_len > UINT32_MAX) {
		return RPC_ERR_INVAL;
	}
	len = (uint32_t)payload_len;
	out.len = 0;
	framer->crc = RPC_CRC16_INIT;
	if (framer->need_nop) {
		/* Not covered by the CRC: the CRC starts at the FF of FF FD. */
		err = framer_put(framer, &out, RPC_FRAME_NOP, false);
		if (err != 0) {
			return framer_fail(framer, err);
		}
	}
	err = framer_put(framer, &out, RPC_FRAME_ESCAPE, true);
	if (err == 0) {
		err = framer_put(framer, &out, RPC_FRAME_START, true);
	}
	for (i = 0; err == 0 && i < 4; i++) {
		err = framer_put_escaped(framer, &out, (uint8_t)(len >> (8 * i)), true);
	}
	if (err == 0) {
		err = framer_flush(framer, &out);
	}
	if (err != 0) {
		return framer_fail(framer, err);
	}
	framer->need_nop = false;
	framer->in_packet = true;
	framer->remaining = len;
	return 0;
}

int rpc_framer_write_chunk(struct rpc_framer *framer, const uint8_t *data, size_t len)
{
	struct framer_out out;
	size_t i;
	int err = 0;

	if (!framer->in_packet || len > framer->remaining || (data == NULL && len > 0)) {
		return RPC_ERR_INVAL;
	}
	out.len = 0;
	for (i = 0; err == 0 && i < len; i++) {
		err = framer_put_escaped(framer, &out, data[i], true);
	}
	if (err == 0) {
		err = framer_flush(framer, &out);
	}
	if (err != 0) {
		return framer_fail(framer, err);
	}
	framer->remaining -= (uint32_t)len;
	return 0;
}

int rpc_framer_finish(struct rpc_framer *framer)
{
	struct framer_out out;
	uint16_t crc = framer->crc;
	int err;

	if (!framer->in_packet || framer->remaining != 0) {
		return RPC_ERR_INVAL;
	}
	out.len = 0;
	err = framer_put_escaped(framer, &out, (uint8_t)(crc & 0xFFu), false);
	if (err == 0) {
		err = framer_put_escaped(framer, &out, (uint8_t)(crc >> 8), false);
	}
	if (err == 0) {
		err = framer_flush(framer, &out);
	}
	if (err != 0) {
		return framer_fail(framer, err);
	}
	framer->in_packet = false;
	framer->crc = RPC_CRC16_INIT;
	return 0;
}

int rpc_framer_write_packet(struct rpc_framer *framer, const uint8_t *payload, size_t len)
{
	int err = rpc_framer_start(framer, len);

	if (err == 0) {
		err = rpc_framer_write_chunk(framer, payload, len);
	}
	if (err == 0) {
		err = rpc_framer_finish(framer);
	}
	return err;
}

/* ---- unframer ---------------------------------------------------------------------------- */

void rpc_unframer_init(struct rpc_unframer *unframer, uint8_t *buf, size_t capacity,
		       rpc_deliver_fn deliver, void *deliver_ctx)
{
	unframer->buf = buf;
	unframer->capacity = buf != NULL ? capacity : 0;
	unframer->deliver = deliver;
	unframer->deliver_ctx = deliver_ctx;
	memset(&unframer->stats, 0, sizeof(unframer->stats));
	rpc_unframer_reset(unframer);
}

/*
 * Back to hunting with an empty buffer. Called after every delivered or dropped packet, so that
 * nothing of a packet can leak into the next one (docs/protocol.md section 4, defect 1).
 */
static void unframer_hunt(struct rpc_unframer *unframer)
{
	unframer->state = RPC_UNFRAMER_HUNTING;
	unframer->escape_pending = false;
	unframer->field_pos = 0;
	unframer->length = 0;
	unframer->received = 0;
	unframer->crc = RPC_CRC16_INIT;
	unframer->crc_received = 0;
}

void rpc_unframer_reset(struct rpc_unframer *unframer)
{
	unframer_hunt(unframer);
}

/* FF FD seen: a new packet starts with an empty buffer; the CRC covers the FF FD itself. */
static void unframer_start_packet(struct rpc_unframer *unframer)
{
	unframer_hunt(unframer);
	unframer->state = RPC_UNFRAMER_LENGTH;
	unframer->crc = rpc_crc16_byte(RPC_FRAME_START,
				       rpc_crc16_byte(RPC_FRAME_ESCAPE, RPC_CRC16_INIT));
}

/* One unescaped data byte of the length, payload or CRC field. */
static void unframer_data(struct rpc_unframer *unframer, uint8_t byte)
{
	switch (unframer->state) {
	case RPC_UNFRAMER_LENGTH:
		unframer->length |= (uint32_t)byte << (8u * unframer->field_pos);
		unframer->field_pos++;
		if (unframer->field_pos < 4) {
			break;
		}
		unframer->field_pos = 0;
		/* Checked before a byte is stored (defect 2), dropped without reading on. */
		if (unframer->length > unframer->capacity) {
			unframer->stats.too_long++;
			unframer_hunt(unframer);
		} else if (unframer->length == 0) {
			unframer->state = RPC_UNFRAMER_CRC;
		} else {
			unframer->state = RPC_UNFRAMER_PAYLOAD;
		}
		break;
	case RPC_UNFRAMER_PAYLOAD:
		/* received < length <= capacity holds here, by the check above. */
		unframer->buf[unframer->received++] = byte;
		if (unframer->received == unframer->length) {
			unframer->state = RPC_UNFRAMER_CRC;
		}
		break;
	case RPC_UNFRAMER_CRC:
		unframer->crc_received |= (uint16_t)((unsigned int)byte << (8u * unframer->field_pos));
		unframer->field_pos++;
		if (unframer->field_pos < 2) {
			break;
		}
		if (unframer->crc_received == unframer->crc) {
			size_t len = unframer->received;

			unframer->stats.delivered++;
			/* Back to hunting first: the callback may inspect or reset the unframer. */
			unframer_hunt(unframer);
			if (unframer->deliver != NULL) {
				unframer->deliver(unframer->deliver_ctx, unframer->buf, len);
			}
		} else {
			unframer->stats.bad_crc++;
			unframer_hunt(unframer);
		}
		break;
	case RPC_UNFRAMER_HUNTING:
	default:
		break;
	}
}

static void unframer_byte(struct rpc_unframer *unframer, uint8_t byte)
{
	if (unframer->state == RPC_UNFRAMER_HUNTING) {
		/* Any FF followed by FD starts a packet; in FF FF FD the last FF pairs with FD. */
		if (unframer->escape_pending && byte == RPC_FRAME_START) {
			unframer_start_packet(unframer);
		} else {
			unframer->escape_pending = (byte == RPC_FRAME_ESCAPE);
		}
		return;
	}

	/*
	 * The CRC covers every wire byte from FF FD to the byte completing the payload, escapes and
	 * no-ops included; the state changes to CRC right after that byte, which ends the coverage.
	 */
	if (unframer->state != RPC_UNFRAMER_CRC) {
		unframer->crc = rpc_crc16_byte(byte, unframer->crc);
	}

	if (!unframer->escape_pending) {
		if (byte == RPC_FRAME_ESCAPE) {
			unframer->escape_pending = true;
		} else {
			unframer_data(unframer, byte);
		}
		return;
	}

	unframer->escape_pending = false;
	switch (byte) {
	case RPC_FRAME_ESCAPE:
		unframer_data(unframer, RPC_FRAME_ESCAPE);
		break;
	case RPC_FRAME_NOP:
		break;
	case RPC_FRAME_START:
		/* Never let a pending packet hold the next one hostage (defect 3). */
		unframer->stats.interrupted++;
		unframer_start_packet(unframer);
		break;
	default:
		/* The xx of FF xx is consumed: hunting resumes with the byte after it. */
		unframer->stats.invalid_escape++;
		unframer_hunt(unframer);
		break;
	}
}

void rpc_unframer_feed(struct rpc_unframer *unframer, const uint8_t *data, size_t len)
{
	size_t i;

	if (data == NULL) {
		return;
	}
	for (i = 0; i < len; i++) {
		unframer_byte(unframer, data[i]);
	}
}
