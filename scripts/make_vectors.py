"""Write tests/vectors/crc16.json and tests/vectors/framing.json from hand-written cases.

The bytes come from a deliberately slow, obviously-correct encoder written here from
docs/protocol.md alone (a bitwise CRC, a byte loop for escaping), not from harness.protocol, so
the vectors check the implementations instead of echoing one of them. Decode expectations
(payloads and drop counts) are written by hand next to each case, from the spec's rules.

Run: ``python scripts/make_vectors.py`` (rewrites both files; review the diff).
"""

from __future__ import annotations

import json
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"
NO_DROPS = {"bad_crc": 0, "too_long": 0, "invalid_escape": 0, "interrupted": 0}


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit: poly 0x1021, init 0xFFFF, no reflection, no xor out."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def escape(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        out.append(byte)
        if byte == 0xFF:
            out.append(0xFF)
    return bytes(out)


def packet(payload: bytes, *, nop: bool = False, crc_delta: int = 0) -> bytes:
    """Wire bytes of one packet; ``crc_delta`` xors the CRC to make a bad one."""
    body = b"\xff\xfd" + escape(len(payload).to_bytes(4, "little")) + escape(payload)
    crc = crc16(body) ^ crc_delta
    return (b"\xfe" if nop else b"") + body + escape(crc.to_bytes(2, "little"))


def with_crc(body: bytes) -> bytes:
    """Append the escaped CRC of ``body`` (hand-built wire bytes from FF FD on)."""
    return body + escape(crc16(body).to_bytes(2, "little"))


def payload_with_ff_in_crc(low: bool) -> bytes:
    """The first payload ``crc-ff-N`` whose CRC has 0xFF in its low (or high) byte."""
    for n in range(100000):
        payload = f"crc-ff-{n}".encode()
        crc = crc16(b"\xff\xfd" + escape(len(payload).to_bytes(4, "little")) + escape(payload))
        if (crc & 0xFF if low else crc >> 8) == 0xFF:
            return payload
    raise AssertionError("no payload found")


def crc_cases() -> list[dict[str, object]]:
    cases = [
        ("check_value", b"123456789"),
        ("empty", b""),
        ("one_zero", b"\x00"),
        ("one_ff", b"\xff"),
        ("spec_example_range", bytes.fromhex("fffd0200000001ffff")),
        ("all_ff_16", b"\xff" * 16),
        ("bytes_0_to_255", bytes(range(256))),
    ]
    out = [{"name": name, "data_hex": data.hex(), "crc": crc16(data)} for name, data in cases]
    assert out[0]["crc"] == 0x29B1, "CRC check value"
    assert out[4]["crc"] == 0xC57A, "spec example CRC"
    return out


def encode_cases() -> list[dict[str, object]]:
    ff_low = payload_with_ff_in_crc(low=True)
    ff_high = payload_with_ff_in_crc(low=False)
    cases = [
        ("spec_example", bytes.fromhex("01ff"), True),
        ("spec_example_without_fe", bytes.fromhex("01ff"), False),
        ("empty", b"", False),
        ("empty_with_fe", b"", True),
        ("one_byte", b"A", False),
        ("all_ff", b"\xff" * 8, False),
        ("fe_fd_bytes", bytes.fromhex("fefdfcfffefd00"), True),
        ("escape_lookalikes", bytes.fromhex("fffefffdff01"), False),
        ("length_255_has_ff", bytes(i % 251 for i in range(255)), False),
        ("length_511_has_ff", bytes(i % 13 for i in range(511)), False),
        ("crc_low_byte_ff", ff_low, False),
        ("crc_high_byte_ff", ff_high, True),
        ("text", b"hello, device", True),
    ]
    out = [
        {"name": name, "payload_hex": p.hex(), "nop": nop, "wire_hex": packet(p, nop=nop).hex()}
        for name, p, nop in cases
    ]
    assert out[0]["wire_hex"] == "fefffd0200000001ffff7ac5", "spec example wire bytes"
    return out


def decode_case(
    name: str, wire: bytes, payloads: list[bytes], max_payload: int = 2048, **drops: int
) -> dict[str, object]:
    assert set(drops) <= set(NO_DROPS), drops
    return {
        "name": name,
        "max_payload": max_payload,
        "wire_hex": wire.hex(),
        "payloads_hex": [p.hex() for p in payloads],
        "drops": {**NO_DROPS, **drops},
    }


def decode_cases() -> list[dict[str, object]]:
    good = packet(b"good")
    big = bytes(range(256)) * 2
    ff_low = payload_with_ff_in_crc(low=True)
    ff_high = payload_with_ff_in_crc(low=False)
    header_abc = bytes.fromhex("fffd03000000")
    body_with_noop = header_abc + b"a\xff\xfebc"  # no-op inside the payload: part of the CRC
    body_noop_in_length = bytes.fromhex("fffd03ff") + bytes.fromhex("fe000000") + b"abc"
    body_ab = bytes.fromhex("fffd02000000") + b"ab"
    crc_of_ab = escape(crc16(body_ab).to_bytes(2, "little"))
    # Cases below cut or split a CRC field byte-wise; that is only meaningful without escapes.
    assert b"\xff" not in crc_of_ab and b"\xff" not in packet(b"lost")[-2:]
    return [
        decode_case("spec_example", bytes.fromhex("fefffd0200000001ffff7ac5"), [b"\x01\xff"]),
        decode_case("empty_payload", packet(b""), [b""]),
        decode_case("all_ff_payload", packet(b"\xff" * 8), [b"\xff" * 8]),
        decode_case(
            "length_and_crc_with_ff",
            packet(bytes(i % 251 for i in range(255))) + packet(ff_low) + packet(ff_high),
            [bytes(i % 251 for i in range(255)), ff_low, ff_high],
        ),
        decode_case(
            "back_to_back_with_and_without_fe",
            packet(b"one", nop=True) + packet(b"two") + packet(big),
            [b"one", b"two", big],
        ),
        decode_case(
            "garbage_between_packets",
            b"\x00\x01junk" + packet(b"one") + b"\xfe\xfdmore\xfe\xff\x00junk" + packet(b"two"),
            [b"one", b"two"],
        ),
        decode_case(
            "text_noise_before_first_packet",
            b"*** Booting Zephyr OS ***\r\nuart ready\r\n" + packet(b"hello", nop=True),
            [b"hello"],
        ),
        decode_case(
            # FF FF FD in garbage: the last FF pairs with FD and starts the packet.
            "ff_ff_fd_in_garbage_starts_a_packet",
            b"noise\xff" + packet(b"x"),
            [b"x"],
        ),
        decode_case(
            "bad_crc_then_good",
            packet(b"corrupt", crc_delta=0x0101) + good,
            [b"good"],
            bad_crc=1,
        ),
        decode_case(
            "corrupted_payload_byte_then_good",
            packet(b"corrupt").replace(b"corrupt", b"corrupT") + good,
            [b"good"],
            bad_crc=1,
        ),
        decode_case(
            "too_long_then_good",
            packet(b"seventeen bytes!!") + good,
            [b"good"],
            max_payload=16,
            too_long=1,
        ),
        decode_case(
            # The length 0x01000000 is over the limit: the packet is dropped right after the
            # length, and the next one, with no gap and no FE, is delivered.
            "too_long_dropped_at_once",
            bytes.fromhex("fffd00000001") + good,
            [b"good"],
            too_long=1,
        ),
        decode_case(
            "exactly_max_payload",
            packet(b"sixteen bytes!!!"),
            [b"sixteen bytes!!!"],
            max_payload=16,
        ),
        decode_case(
            "invalid_escape_in_payload_then_good",
            bytes.fromhex("fffd05000000") + b"ab\xff\x01cd" + good,
            [b"good"],
            invalid_escape=1,
        ),
        decode_case(
            "invalid_escape_in_length",
            bytes.fromhex("fffd05ff20") + good,
            [b"good"],
            invalid_escape=1,
        ),
        decode_case(
            "interrupted_in_length",
            bytes.fromhex("fffd0500") + good,
            [b"good"],
            interrupted=1,
        ),
        decode_case(
            "interrupted_in_payload",
            bytes.fromhex("fffd05000000") + b"ab" + good,
            [b"good"],
            interrupted=1,
        ),
        decode_case(
            "interrupted_in_crc",
            packet(b"lost")[:-1] + good,
            [b"good"],
            interrupted=1,
        ),
        decode_case(
            # A length that is allowed but far too large (a corrupted length): the next packet's
            # FF FD interrupts it at once; nothing waits for 1792 bytes.
            "large_declared_length_then_good",
            bytes.fromhex("fffd00070000") + b"abc" + good,
            [b"good"],
            interrupted=1,
        ),
        decode_case(
            "escaped_ff_fd_in_payload_is_data",
            packet(b"\xff\xfd\xff\xfd"),
            [b"\xff\xfd\xff\xfd"],
        ),
        decode_case("noop_inside_payload_is_in_crc", with_crc(body_with_noop), [b"abc"]),
        decode_case(
            "noop_inside_payload_crc_without_it_is_bad",
            body_with_noop + escape(crc16(header_abc + b"abc").to_bytes(2, "little")),
            [],
            bad_crc=1,
        ),
        decode_case("noop_inside_length", with_crc(body_noop_in_length), [b"abc"]),
        decode_case(
            # A no-op after the last payload byte is outside the CRC range, and one inside the
            # CRC field is ignored.
            "noop_before_and_inside_crc",
            body_ab + b"\xff\xfe" + crc_of_ab[:1] + b"\xff\xfe" + crc_of_ab[1:],
            [b"ab"],
        ),
        decode_case(
            "corrupt_then_good_then_truncated",
            packet(b"first", crc_delta=1) + good + packet(b"never complete")[:-3],
            [b"good"],
            bad_crc=1,
        ),
        decode_case("stream_ends_in_length", bytes.fromhex("fffd0500"), []),
        decode_case("stream_ends_in_payload", packet(b"hello")[:-4], []),
        decode_case("stream_ends_in_crc", packet(b"hello")[:-1], []),
        decode_case("stream_ends_after_lone_ff", bytes.fromhex("fffd02000000ff"), []),
        decode_case(
            "every_drop_reason",
            packet(b"a", crc_delta=0x8000)
            + bytes.fromhex("fffd01000000ff07")
            + bytes.fromhex("fffd01")
            + packet(b"b")
            + packet(b"x" * 20)
            + packet(b"c"),
            [b"b", b"c"],
            max_payload=8,
            bad_crc=1,
            invalid_escape=1,
            interrupted=1,
            too_long=1,
        ),
        decode_case(
            "zero_max_payload_accepts_empty", packet(b"") + packet(b"x"), [b""], 0, too_long=1
        ),
    ]


def main() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    (VECTORS / "crc16.json").write_text(json.dumps({"cases": crc_cases()}, indent=1) + "\n")
    framing = {"encode": encode_cases(), "decode": decode_cases()}
    (VECTORS / "framing.json").write_text(json.dumps(framing, indent=1) + "\n")
    print(f"wrote {VECTORS / 'crc16.json'} and {VECTORS / 'framing.json'}")


if __name__ == "__main__":
    main()
