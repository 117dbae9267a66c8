/*
 * CRC-16/CCITT-FALSE.
 *
 * Nibble-table implementation: 16 entries (32 bytes of flash) instead of 256 (512 bytes), two
 * lookups per byte. The UART, not the CRC, bounds the throughput on every target we have, so the
 * small table is the better trade on a Cortex-M3.
 */
#include <rpc_server/crc16.h>

static const uint16_t crc16_nibble[16] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
	0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF,
};

uint16_t rpc_crc16_byte(uint8_t byte, uint16_t crc)
{
	/* High nibble first: the CRC is not reflected, so bits enter MSB first. */
	crc = (uint16_t)((crc << 4) ^ crc16_nibble[((crc >> 12) ^ (byte >> 4)) & 0x0Fu]);
	crc = (uint16_t)((crc << 4) ^ crc16_nibble[((crc >> 12) ^ (byte & 0x0Fu)) & 0x0Fu]);
	return crc;
}

uint16_t rpc_crc16(const uint8_t *data, size_t len, uint16_t crc)
{
	size_t i;

	if (data == NULL) {
		return crc;
	}
	for (i = 0; i < len; i++) {
		crc = rpc_crc16_byte(data[i], crc);
	}
	return crc;
}
