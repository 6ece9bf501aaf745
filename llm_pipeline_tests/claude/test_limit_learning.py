"""Learning limits from the API's headers, pinned with a virtual clock: what is adopted (up and
down), what is refused (bad values, stale news), the bucket's depth (from `-remaining`, shrunk by
a limiter 429), caps and share, the shared record, first contact, and which 429s pause everyone."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from llm_pipeline.claude.errors import RateLimited
from llm_pipeline.claude.limit_learning import LimitLearner
from llm_pipeline.claude.limiter import Limiter, Reservation
from llm_pipeline.claude.limits import (
    BadRateLimitHeader,
    Caps,
    LimitsChanged,
    NoRateLimitHeaders,
    burst_from_remaining,
    in_effect,
)
from llm_pipeline.claude.rate_headers import read_rate_headers
from llm_pipeline.claude.state.base import LearnedLimits
from llm_pipeline.claude.state.memory import MemoryBackend
from llm_pipeline_tests.fixtures.fake_clock import FakeClock, assert_released_after

T0 = 1_000_000.0
MODEL, ENDPOINT = "claude-haiku-5-5", "api.example"


def headers(rpm: float | str | None = None, itpm=None, otpm=None, *, left=None, left_in=None, left_out=None):
    """Rate-limit headers as the API names them (lower case, as `rate_limit_headers` hands them on)."""
    values = {
        "anthropic-ratelimit-requests-limit": rpm,
        "anthropic-ratelimit-input-tokens-limit": itpm,
        "anthropic-ratelimit-output-tokens-limit": otpm,
        "anthropic-ratelimit-requests-remaining": left,
        "anthropic-ratelimit-input-tokens-remaining": left_in,
        "anthropic-ratelimit-output-tokens-remaining": left_out,
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def make(
    clock: FakeClock, *, caps: Caps | None = None, backend: MemoryBackend | None = None
) -> tuple[LimitLearner, Limiter, list[object], MemoryBackend]:
    backend = backend or MemoryBackend(clock.now)
    limiter = Limiter(
        MODEL,
        backend.limiter,
        rpm=50,
        itpm=50_000,
        otpm=10_000,
        burst_seconds=30.0,
        clock=clock,
        namespace=ENDPOINT,
    )
    events: list[object] = []
    learner = LimitLearner(
        limiter,
        backend.learned,
        model=MODEL,
        endpoint=ENDPOINT,
        caps=caps or Caps(),
        clock=clock,
        on_event=events.append,
    )
    return learner, limiter, events, backend


async def test_before_anything_is_known_the_defaults_pace_and_first_contact_is_pending() -> None:
    learner, limiter, events, _ = make(FakeClock(T0))
    await learner.load()
    assert not learner.known
    assert limiter.limits == ((50.0, 50_000.0, 10_000.0), 30.0)
    assert learner.limits.sources == ("default", "default", "default")
    assert [type(e) for e in events] == [LimitsChanged]


async def test_limits_are_learned_up_and_down_and_kept_in_the_shared_state() -> None:
    clock = FakeClock(T0)
    learner, limiter, events, backend = make(clock)
    await learner.load()
    await learner.observe(headers(3_000, 2_000_000, 400_000, left=249, left_in=1_665_000, left_out=332_000))
    assert learner.known
    assert limiter.limits[0] == (3_000, 2_000_000, 400_000)
    assert learner.limits.sources == ("headers", "headers", "headers")
    stored = await backend.learned.get(f"{ENDPOINT}/{MODEL}")
    assert (stored.rpm, stored.itpm, stored.otpm, stored.seen_at) == (3_000, 2_000_000, 400_000, T0)
    await clock.advance(5)
    await learner.observe(headers(1_000, 2_000_000, 400_000, left=80))
    assert limiter.limits[0] == (1_000, 2_000_000, 400_000), "a lower tier is picked up on the next response"
    assert (await backend.learned.get(f"{ENDPOINT}/{MODEL}")).changed_at == T0 + 5
    assert [e.reason for e in events if isinstance(e, LimitsChanged)] == ["start", "headers", "headers"]


async def test_a_rate_the_server_reports_no_limit_for_is_not_limited() -> None:
    learner, limiter, _, _ = make(FakeClock(T0))
    await learner.observe(headers(3_000, left=249))
    assert learner.limits.rates == (3_000, None, None)
    assert learner.limits.sources == ("headers", "not limited", "not limited")
    assert limiter.limits[0][1] >= 1e12


@pytest.mark.parametrize(
    ("caps", "rates", "sources"),
    [
        (Caps(), (4_000, 400_000, 80_000), ("headers",) * 3),
        (Caps((1_000, None, None)), (1_000, 400_000, 80_000), ("configured cap", "headers", "headers")),
        (Caps((9_000, None, None)), (4_000, 400_000, 80_000), ("headers",) * 3),  # a cap above: no effect
        (Caps(share=0.25), (1_000, 100_000, 20_000), ("headers",) * 3),
        (
            Caps((500, None, 50_000), share=0.5),
            (500, 200_000, 40_000),
            ("configured cap", "headers", "headers"),
        ),
    ],
)
async def test_caps_and_share_bound_what_is_learned(caps: Caps, rates: tuple, sources: tuple) -> None:
    learner, limiter, _, _ = make(FakeClock(T0), caps=caps)
    await learner.observe(headers(4_000, 400_000, 80_000, left=3_999))
    assert learner.limits.rates == pytest.approx(rates)
    assert learner.limits.sources == sources
    assert limiter.limits[0] == pytest.approx(rates)


def test_without_headers_the_caps_else_the_defaults_apply() -> None:
    effect = in_effect(MODEL, ENDPOINT, None, Caps((600, None, None), burst_s=5.0))
    assert effect.rates == (600, 50_000, 10_000)
    assert effect.sources == ("configured cap", "default", "default")
    assert (effect.burst_s, effect.burst_source) == (5.0, "configured cap")
    assert "rpm 600 (configured cap)" in effect.describe()


async def test_a_server_that_sends_no_headers_is_said_once_and_ends_first_contact() -> None:
    learner, limiter, events, _ = make(FakeClock(T0), caps=Caps((600, None, None)))
    await learner.load()
    await learner.observe({})
    await learner.observe({"content-type": "application/json"})
    assert learner.known
    warnings = [e for e in events if isinstance(e, NoRateLimitHeaders)]
    assert len(warnings) == 1
    assert "LLM_PIPELINE_RPM" in str(warnings[0])
    assert "rpm 600 (configured cap)" in str(warnings[0])
    assert limiter.limits == ((600, 50_000, 10_000), 30.0)


async def test_an_error_answered_without_headers_ends_first_contact_without_a_warning() -> None:
    """A 500 or 529 says nothing about the limits, but the server is there: the fan-out may start at
    the limits in effect (an outage must reach the breaker), and a later success still teaches."""
    learner, limiter, events, _ = make(FakeClock(T0))
    await learner.load()
    await learner.observe({}, status=500)
    assert learner.known
    assert not [e for e in events if isinstance(e, NoRateLimitHeaders)]
    assert learner.limits.sources == ("default", "default", "default")
    await learner.observe(headers(3_000, left=249))
    assert limiter.limits[0][0] == 3_000


@pytest.mark.parametrize(
    "bad",
    [
        headers("lots", left=10),
        headers(-3_000, left=10),
        headers(0, left=10),
        headers("nan", left=10),
        headers("inf", left=10),
        headers(3_000, left=-1) | {"anthropic-ratelimit-requests-limit": "1e400"},
    ],
)
async def test_a_malformed_or_negative_value_is_never_adopted_and_reported_once(bad: dict) -> None:
    learner, limiter, events, backend = make(FakeClock(T0))
    await learner.load()
    before = limiter.limits
    await learner.observe(bad)
    await learner.observe(bad)
    assert limiter.limits == before
    assert await backend.learned.get(f"{ENDPOINT}/{MODEL}") is None
    reported = [e for e in events if isinstance(e, BadRateLimitHeader)]
    assert len(reported) == len(read_rate_headers(bad).bad) >= 1, "once per header, not per response"
    assert reported[0].header in str(reported[0])


async def test_a_response_sent_before_a_change_was_adopted_cannot_undo_it() -> None:
    clock = FakeClock(T0)
    learner, limiter, _, _ = make(clock)
    await learner.observe(headers(3_000, left=249), sent_at=T0)
    await clock.advance(1)
    sent_late = clock.now()
    await learner.observe(headers(1_500, left=100), sent_at=sent_late)  # the tier changed
    await learner.observe(headers(3_000, left=50), sent_at=sent_late - 0.5)  # older news, arriving late
    assert limiter.limits[0][0] == 1_500
    await learner.observe(headers(3_000, left=50), sent_at=sent_late + 0.1)  # and back, for real
    assert limiter.limits[0][0] == 3_000


@pytest.mark.parametrize(
    ("limits", "remaining", "depth"),
    [
        ((3_000, None, None), (249, None, None), 4.98),  # 249 requests left at 50/s
        ((3_000, 1_500_000, None), (249, 125_000, None), 4.98),  # 124,500 to 125,500 tokens: 4.98 s at least
        ((3_000, 1_500_000, None), (249, 100_123, None), 4.00492),  # exact: the emptier bucket decides
        ((None, 60_000, None), (None, 0, None), None),  # "0" rounded: anything below 500, says nothing
        ((60, None, None), (0, None, None), 0.0),  # an empty request bucket says: at least nothing
    ],
)
def test_bucket_depth_from_what_remains(limits: tuple, remaining: tuple, depth: float | None) -> None:
    found = burst_from_remaining(limits, remaining)
    assert found == (None if depth is None else pytest.approx(depth))


async def test_the_burst_is_learned_from_the_fullest_bucket_seen_and_capped() -> None:
    clock = FakeClock(T0)
    learner, limiter, _, _ = make(clock, caps=Caps(burst_s=20.0))
    await learner.observe(headers(3_000, left=99))  # a busy account: at least 2 s deep
    assert learner.limits.burst_s == pytest.approx(2.0)
    await learner.observe(headers(3_000, left=10))
    assert learner.limits.burst_s == pytest.approx(2.0), "an emptier bucket shows nothing new"
    await learner.observe(headers(3_000, left=299))  # after a quiet spell: all of it
    assert learner.limits.burst_s == pytest.approx(6.0)
    assert limiter.limits[1] == pytest.approx(6.0)
    await learner.observe(headers(3_000, left=2_999))
    assert (learner.limits.burst_s, learner.limits.burst_source) == (20.0, "configured cap")


async def test_a_limiter_429_shrinks_the_burst_to_where_the_refused_booking_left_the_schedule() -> None:
    clock = FakeClock(T0)
    learner, _, _, _ = make(clock)
    await learner.observe(headers(3_000, left=2_999))  # the learned depth says 60 s
    assert learner.limits.burst_s == pytest.approx(60.0)
    refused = Reservation(1, 0, 0.0, backlogs=(2.5, 0.0, 0.0))  # booked 2.5 s from full, refused
    await learner.observe(headers(3_000, left=0), reservation=refused, status=429)
    assert learner.limits.burst_s == pytest.approx(2.5)
    deeper = Reservation(1, 0, 0.0, backlogs=(4.0, 0.0, 0.0))
    await learner.observe(headers(3_000, left=0), reservation=deeper, status=429)
    assert learner.limits.burst_s == pytest.approx(2.5), "a later refusal further down says nothing new"
    tiny = Reservation(1, 0, 0.0, backlogs=(0.2, 0.0, 0.0))
    await learner.observe(headers(3_000, left=0), reservation=tiny, status=429)
    assert learner.limits.burst_s == 1.0, "never below a second (Anthropic's finest stated grain)"


async def test_what_one_process_learned_is_where_the_next_one_starts() -> None:
    clock = FakeClock(T0)
    first, _, _, backend = make(clock)
    await first.observe(headers(4_000, 4_000_000, 800_000, left=3_999, left_in=3_999_000, left_out=799_000))
    second, limiter, events, _ = make(clock, backend=backend)
    assert not second.known
    await second.load()
    assert second.known, "no first contact: the shared state knows"
    assert limiter.limits[0] == (4_000, 4_000_000, 800_000)
    assert "from the shared state" in str(events[0])


async def test_at_first_contact_each_attempt_looks_for_what_another_process_learned_meanwhile() -> None:
    """Regression: a step that started before anyone had learned booked its first request in the
    default units, converting the shared row other processes paced by (one backfill run stalled for
    6.7 s after the conversion lost units and a limiter 429 shrank the burst)."""
    clock = FakeClock(T0)
    waiting, limiter, events, backend = make(clock)
    await waiting.load()
    assert not waiting.known
    other, _, _, _ = make(clock, backend=backend)
    await other.observe(headers(1_200, left=599))
    await waiting.load()  # its next attempt
    assert waiting.known
    assert limiter.limits == ((1_200, 1e12, 1e12), pytest.approx(30.0))
    assert [e.reason for e in events if isinstance(e, LimitsChanged)] == ["start", "start"]


async def test_seen_at_is_refreshed_at_most_once_a_minute_when_nothing_changes() -> None:
    clock = FakeClock(T0)
    learner, _, _, backend = make(clock)
    await learner.observe(headers(3_000, left=249))
    await clock.advance(30)
    await learner.observe(headers(3_000, left=100))
    assert (await backend.learned.get(f"{ENDPOINT}/{MODEL}")).seen_at == T0
    await clock.advance(31)
    await learner.observe(headers(3_000, left=100))
    assert (await backend.learned.get(f"{ENDPOINT}/{MODEL}")).seen_at == T0 + 61


async def test_remaining_below_the_schedule_catches_the_limiter_down() -> None:
    clock = FakeClock(T0)
    learner, limiter, _, _ = make(clock, caps=Caps(burst_s=10.0))
    await learner.observe(headers(60, left=10))  # 1/s, 10 deep: full
    assert learner.limits.burst_s == 10.0
    await learner.observe(headers(60, left=0))  # someone else spent it all
    await assert_released_after(clock, limiter.reserve(0, 0), 0.99, 0.01)


@pytest.mark.parametrize(
    ("caps", "unanswered", "given_back_s"),
    [
        (Caps(), 2, 2.0),  # paced at the server's limit: what it never counted comes back
        (Caps(), 1, 1.0),  # no more than the requests that got no answer booked
        (Caps(), 0, 0.0),  # the room it shows is no reason by itself
        (Caps(rates=(60, None, None)), 2, 2.0),  # a cap at the account's limit is no limit of its own
        (Caps(rates=(30, None, None)), 2, 0.0),  # a cap below it: the rest is someone else's
        (Caps(share=0.5), 2, 0.0),  # likewise a share
    ],
)
async def test_remaining_above_the_schedule_gives_back_what_the_server_never_counted(
    caps: Caps, unanswered: int, given_back_s: float
) -> None:
    """60 RPM, 20 deep. Nine booked at once; the 2nd and 3rd get no answer (their connections
    drop), and the answer to the 4th says 18 remain: they never reached the server. The 5 booked
    after the 4th still count, so 2 requests' worth comes back, as far as the unanswered ones
    booked, and only when we pace at the server's own limit."""
    clock = FakeClock(T0)
    learner, limiter, _, backend = make(clock, caps=replace(caps, burst_s=20.0))
    await learner.observe(headers(60, left=20))
    booked = [await limiter.reserve(0, 0) for _ in range(9)]
    for reservation in booked[1 : 1 + unanswered]:
        limiter.unanswered(reservation)
    key = f"{ENDPOINT}/{MODEL}"
    await clock.advance(0.5)
    await learner.observe(headers(60, left=19), sent_at=T0, reservation=booked[0])
    before = (await backend.limiter.peek(key)).backlogs[0]
    await learner.observe(headers(60, left=18), sent_at=T0, reservation=booked[3])
    after = (await backend.limiter.peek(key)).backlogs[0]
    assert before - after == pytest.approx(given_back_s)
    await learner.observe(headers(60, left=18), sent_at=T0, reservation=booked[3])
    assert (await backend.limiter.peek(key)).backlogs[0] == pytest.approx(after), "the same news: no more"


@pytest.mark.parametrize(
    ("observed", "seconds_later", "limits", "shared"),
    [
        (None, 0.0, {}, True),  # no response reported anything: assume the account is out
        (headers(left=7), 0.5, {}, False),  # room, lately: a stray 429
        (headers(left=7), 1.5, {}, True),  # that news is stale
        (headers(left=0), 0.1, {}, True),  # the server said: empty
        (headers(left=7, left_in=0), 0.1, {}, True),
        ({"content-type": "application/json"}, 0.1, {}, True),  # no rate-limit headers: no news
        (headers(left=7), 0.1, headers(left=0), True),  # the server's limiter itself sent the 429
    ],
)
async def test_which_429s_pause_everyone(
    observed: dict | None, seconds_later: float, limits: dict, shared: bool
) -> None:
    clock = FakeClock(T0)
    learner, _, _, _ = make(clock)
    if observed is not None:
        await learner.observe(observed)
    await clock.advance(seconds_later)
    error = RateLimited("429", retry_after=1.0, status_code=429, limits=limits)
    assert learner.shares_429(error) is shared


async def test_a_pause_right_after_a_report_of_an_empty_bucket_is_no_fresh_burst() -> None:
    clock = FakeClock(T0)
    learner, limiter, _, _ = make(clock, caps=Caps((600, None, None), burst_s=1.0))
    await learner.observe({})  # no headers: the caps pace (10/s, 1 s deep, 0.9 s after the margin)
    await learner.observe(headers(left=0))
    await learner.cool_down(T0 + 2.0)
    released = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(2.0)
    assert not released.done(), "the buckets count as empty when the pause ends"
    await clock.advance(0.1)
    assert released.done()


def test_learned_limits_describe_themselves_for_the_run_log() -> None:
    record = LearnedLimits(f"{ENDPOINT}/{MODEL}", 4_000, None, 800_000, 59.98, T0 + 60, T0)
    effect = in_effect(MODEL, ENDPOINT, record, Caps((None, None, 500_000), share=0.5))
    text = effect.describe()
    assert "rpm 2,000 (headers)" in text
    assert "itpm not limited" in text
    assert "otpm 400,000 (headers)" in text
    assert "burst 60.0 s (headers)" in text
    assert "share 0.5" in text
    assert effect.as_metadata()["otpm"] == {"value": 400_000, "source": "headers"}
