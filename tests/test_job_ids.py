"""New job ids (jobs.services.scheduling.new_ids): version 7 UUIDs, time-ordered."""

import time
import uuid

from jobs.services.scheduling import new_ids


def test_new_ids_are_version_7_uuids_of_this_millisecond_each_unique():
    before = time.time_ns() // 1_000_000
    ids = new_ids(2000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000
    for made in ids:
        # The same value, hash and text as the UUID parsed from its text.
        parsed = uuid.UUID(str(made))
        assert (made, hash(made), made.hex) == (parsed, hash(parsed), parsed.hex)
        assert made.version == 7 and made.variant == uuid.RFC_4122
        assert before <= made.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_and_the_random_bits_vary():
    first = new_ids(500)
    time.sleep(0.002)
    later = new_ids(500)
    assert max(first) < min(later)
    # 74 random bits: rand_a (12 bits) and rand_b (62) each take many values.
    assert len({made.int >> 64 & 0xFFF for made in first}) > 400
    assert len({made.int & (1 << 62) - 1 for made in first}) == 500
