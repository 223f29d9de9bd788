"""The ordering barrier: one message per person in flight, later ones wait, others flow."""

from __future__ import annotations

import time

from turnout.delivery.barrier import Barrier


def test_a_person_has_one_message_in_flight_and_the_rest_wait_in_order() -> None:
    barrier = Barrier(per_person=10)
    for offset, person in enumerate(["a", "a", "b", "a"], start=1):
        assert barrier.add(person, offset)
    assert barrier.take(10) == [("a", 1), ("b", 3)]
    assert barrier.take(10) == []  # both people are busy
    barrier.done("a", 1)
    assert barrier.take(10) == [("a", 2)]


def test_a_retrying_person_blocks_only_themselves() -> None:
    barrier = Barrier(per_person=10)
    barrier.add("slow", 1)
    barrier.add("slow", 2)
    barrier.add("fast", 3)
    barrier.add("fast", 4)
    assert barrier.take(10) == [("slow", 1), ("fast", 3)]
    barrier.retry_later("slow", delay=60)
    barrier.done("fast", 3)
    assert barrier.take(10) == [("fast", 4)]
    barrier.release_timers(now=10**12)  # the retry delay has passed
    assert barrier.take(10) == [("slow", 1)]  # the same head message, still first


def test_a_person_over_their_share_spills_to_the_log_and_is_read_back_in_order() -> None:
    barrier = Barrier(per_person=2)
    assert barrier.add("hot", 1) and barrier.add("hot", 2)
    assert not barrier.add("hot", 3)  # left in the log
    assert barrier.spilled == {"hot": 2}  # everything of theirs up to offset 2 is held
    assert not barrier.add("hot", 4)  # still spilled: later ones too
    barrier.take(1)
    barrier.done("hot", 1)
    assert barrier.wants_refill() == ["hot"]
    barrier.add_recovered("hot", [3, 4], last_read=4, complete=True)
    assert barrier.spilled == {}
    taken = []
    while pair := barrier.take(1):
        taken.append(pair[0][1])
        barrier.done(*pair[0])
    assert taken == [2, 3, 4]


def test_reading_back_entries_that_need_no_sending_still_moves_past_them() -> None:
    barrier = Barrier(per_person=1)
    barrier.add("hot", 1)
    assert not barrier.add("hot", 5)
    assert barrier.spilled == {"hot": 4}
    # Read back 5..9, all filtered (nothing to queue): the next read must start after 9.
    barrier.add_recovered("hot", [], last_read=9, complete=False)
    assert barrier.spilled == {"hot": 9}


def test_once_the_destination_answers_long_backoffs_are_cut_short() -> None:
    barrier = Barrier(per_person=10)
    for offset, person in enumerate(["a", "b"], start=1):
        barrier.add(person, offset)
    barrier.take(10)
    barrier.retry_later("a", delay=300)  # backed off during an outage
    barrier.retry_later("b", delay=0.5)
    assert barrier.expedite(within=2.0) == 1  # only the long wait moves
    barrier.release_timers(now=time.monotonic() + 2.5)  # well before a's 300 s were up
    assert sorted(p for p, _ in barrier.take(10)) == ["a", "b"]
