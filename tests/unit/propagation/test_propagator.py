"""PosthogPropagator, its settings and targets, and the inject/extract helpers (in process)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagate import get_global_textmap, set_global_textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import posthog_otel as ph
from posthog_otel.context import context_with_scope
from posthog_otel.propagation import baggage as bg
from posthog_otel.propagation.destination import destination_of, with_destination
from posthog_otel.propagation.propagator import PosthogPropagator
from posthog_otel.propagation.settings import PropagationSettings
from posthog_otel.propagation.targets import Targets, host_of

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def scope_context(**tags: Any) -> Context:
    """A context with identity and tags, bound for ``billing`` (an internal target)."""
    return with_destination("http://billing/", bare_scope_context(**tags))


def bare_scope_context(**tags: Any) -> Context:
    """The same state, without a destination (unknown: nothing PostHog goes out)."""
    scope = ph.Scope(fresh=True)
    scope.set_distinct_id("user-1")
    scope.set_session_id("session-1")
    scope.set_window_id("window-1")
    scope.update_tags(tags)
    return context_with_scope(scope, Context())


def resolved(ctx: Context) -> Any:
    scope = ph.current_scope(ctx)
    assert scope is not None
    return scope.resolve()


@pytest.fixture
def composite() -> Iterator[CompositePropagator]:
    """The global textmap as OTEL_PROPAGATORS=tracecontext,baggage,posthog builds it."""
    previous = get_global_textmap()
    textmap = CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), PosthogPropagator()]
    )
    set_global_textmap(textmap)
    yield textmap
    set_global_textmap(previous)


# -- propagator ------------------------------------------------------------------------------


def test_round_trip_through_a_dict_carrier() -> None:
    propagator = PosthogPropagator()
    carrier: dict[str, str] = {}
    propagator.inject(carrier, scope_context(plan="pro", seats=3))
    assert carrier["X-POSTHOG-DISTINCT-ID"] == "user-1"
    assert carrier["X-POSTHOG-SESSION-ID"] == "session-1"
    assert carrier["X-POSTHOG-WINDOW-ID"] == "window-1"
    state = resolved(propagator.extract(carrier, Context()))
    assert (state.distinct_id, state.session_id, state.get("window_id")) == (
        "user-1",
        "session-1",
        "window-1",
    )
    assert state.tags == {"plan": "pro", "seats": 3}
    assert propagator.fields == {
        "baggage",
        "X-POSTHOG-DISTINCT-ID",
        "X-POSTHOG-SESSION-ID",
        "X-POSTHOG-WINDOW-ID",
        "X-POSTHOG-DEVICE-ID",
    }


def test_extracted_scope_is_a_root_even_under_a_current_scope() -> None:
    propagator = PosthogPropagator()
    with ph.new_context():
        ph.identify_context("local-user")
        ph.tag("local", True)
        ctx = propagator.extract({"X-POSTHOG-SESSION-ID": "remote-session"})
        scope = ph.current_scope(ctx)
        assert scope is not None and scope.fresh and scope.parent is None
        assert scope.resolve().distinct_id is None
        assert scope.resolve().tags == {}
        token = otel_context.attach(ctx)
        try:
            with ph.new_context():  # code in the request builds on the extracted scope
                ph.tag("added", 1)
                assert ph.get_context_session_id() == "remote-session"
                assert ph.get_tags() == {"added": 1}
        finally:
            otel_context.detach(token)


def test_nothing_inbound_leaves_the_context_unchanged() -> None:
    ctx = Context()
    assert PosthogPropagator().extract({"other": "x"}, ctx) is ctx
    assert PosthogPropagator().extract({"baggage": "a=1"}, ctx) is ctx


def test_headers_win_over_baggage_for_identity() -> None:
    carrier = {
        "baggage": "posthog.distinct_id=from-baggage,posthog.session_id=bag-session,"
        "posthog.tag.t=1",
        "x-posthog-distinct-id": "from-header",  # lower case works with the default getter
    }
    state = resolved(PosthogPropagator().extract(carrier, Context()))
    assert state.distinct_id == "from-header"
    assert state.session_id == "bag-session"
    assert state.tags == {"t": 1}


@pytest.mark.parametrize(
    ("trust", "expected"),
    [
        ("all", ("hdr", {"t": 1})),
        ("headers", ("hdr", {})),
        ("none", None),
    ],
)
def test_trust_inbound(trust: str, expected: Any) -> None:
    carrier = {"baggage": "posthog.tag.t=1,posthog.session_id=s", "X-POSTHOG-DISTINCT-ID": "hdr"}
    ctx = PosthogPropagator(trust_inbound=trust).extract(carrier, Context())
    scope = ph.current_scope(ctx)
    if expected is None:
        assert scope is None
    else:
        assert (scope.resolve().distinct_id, scope.resolve().tags) == expected  # type: ignore[union-attr]
        assert scope.resolve().session_id == ("s" if trust == "all" else None)  # type: ignore[union-attr]


def test_wsgi_environ_with_the_contrib_getter() -> None:
    environ = {
        "HTTP_BAGGAGE": "posthog.tag.plan=pro",
        "HTTP_X_POSTHOG_DISTINCT_ID": " browser-user\r\n",
        "HTTP_X_POSTHOG_SESSION_ID": "\x00\x01",
    }
    state = resolved(PosthogPropagator().extract(environ, Context(), getter=wsgi_getter))
    assert state.distinct_id == "browser-user"
    assert state.session_id is None  # nothing left after sanitising: absent
    assert state.tags == {"plan": "pro"}


def test_inject_merges_with_other_members_without_clobbering_or_doubling() -> None:
    carrier = {"baggage": "a=1, b=two;prop ,posthog.distinct_id=stale,posthog.tag.old=1"}
    PosthogPropagator().inject(carrier, scope_context(plan="pro"))
    members = carrier["baggage"].split(",")
    assert members[:2] == ["a=1", "b=two;prop"]
    assert members[2:] == [
        "posthog.distinct_id=user-1",
        "posthog.session_id=session-1",
        "posthog.window_id=window-1",
        "posthog.tag.plan=pro",
    ]
    mixed_case = {"Baggage": "a=1"}
    PosthogPropagator().inject(mixed_case, scope_context())
    assert list(mixed_case) == [
        "Baggage",
        "X-POSTHOG-DISTINCT-ID",
        "X-POSTHOG-SESSION-ID",
        "X-POSTHOG-WINDOW-ID",
    ]


def test_non_ascii_identity_goes_in_baggage_only() -> None:
    ctx = context_with_scope(ph.Scope(fresh=True), Context())
    ph.current_scope(ctx).set_distinct_id("ユーザー")  # type: ignore[union-attr]
    carrier: dict[str, str] = {}
    PosthogPropagator().inject(carrier, with_destination("internal", ctx))
    assert "X-POSTHOG-DISTINCT-ID" not in carrier  # HTTP header values are ASCII
    assert resolved(PosthogPropagator().extract(carrier, Context())).distinct_id == "ユーザー"


def test_no_state_injects_nothing() -> None:
    carrier = {"baggage": "a=1"}
    PosthogPropagator().inject(carrier, Context())
    assert carrier == {"baggage": "a=1"}
    with ph.new_context():  # an empty scope
        PosthogPropagator().inject(carrier)
    assert carrier == {"baggage": "a=1"}


# -- destination policy --------------------------------------------------------------------


def test_non_target_gets_no_posthog_member_and_no_header() -> None:
    before = bg.stats()["outbound_withheld"]
    carrier = {
        "baggage": "a=1,posthog.distinct_id=leak,b=2",
        "x-posthog-distinct-id": "leak",
        "X-POSTHOG-SESSION-ID": "leak",
    }
    ctx = with_destination("https://api.stripe.com/v1/charges", scope_context(plan="pro"))
    PosthogPropagator().inject(carrier, ctx)
    assert carrier == {"baggage": "a=1,b=2"}
    only_ours = {"baggage": "posthog.tag.x=1"}
    PosthogPropagator().inject(only_ours, ctx)
    assert only_ours == {}
    assert bg.stats()["outbound_withheld"] - before == 2


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8000/x", True),
        ("http://localhost/", True),
        ("http://[::1]:9000/", True),
        ("http://10.2.3.4/", True),
        ("http://172.20.0.5/", True),
        ("http://192.168.1.1/", True),
        ("http://billing:8080/", True),
        ("http://billing.default.svc/", True),
        ("http://api.billing.svc.cluster.local/", True),
        ("http://db.internal/", True),
        ("http://printer.local/", True),
        ("http://DB.Internal./", True),
        ("https://api.stripe.com/", False),
        ("https://8.8.8.8/", False),
        ("http://172.32.0.1/", False),
        ("http://internal.example.com/", False),
        ("http://[2001:db8::1]/", False),
        ("not a url", False),
    ],
)
def test_default_targets_are_internal_only(url: str, allowed: bool) -> None:
    carrier: dict[str, str] = {}
    PosthogPropagator().inject(carrier, with_destination(url, scope_context()))
    assert ("X-POSTHOG-DISTINCT-ID" in carrier) is allowed
    assert ("baggage" in carrier) is allowed


def test_unknown_destination_gets_nothing() -> None:
    ctx = bare_scope_context()
    assert destination_of(ctx) is None
    carrier: dict[str, str] = {"baggage": "other=1,posthog.distinct_id=stale"}
    PosthogPropagator().inject(carrier, ctx)
    assert carrier == {"baggage": "other=1"}
    assert not PosthogPropagator().allows(ctx)


@pytest.mark.parametrize("targets", [["internal"], ["*.mycorp.com"], ["10.0.0.0/8"]])
def test_the_internal_destination_always_gets_the_state(targets: list[str]) -> None:
    propagator = PosthogPropagator(propagation_targets=targets)
    for spelling in ("internal", "INTERNAL", " Internal "):
        carrier: dict[str, str] = {}
        propagator.inject(carrier, with_destination(spelling, bare_scope_context()))
        assert carrier["X-POSTHOG-DISTINCT-ID"] == "user-1"
    carrier = {}  # a host that happens to be called "internal" is an ordinary host
    propagator.inject(carrier, with_destination("http://internal/", bare_scope_context()))
    assert ("X-POSTHOG-DISTINCT-ID" in carrier) is (targets == ["internal"])


def test_destination_read_from_the_current_http_client_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    propagator = PosthogPropagator()
    token = otel_context.attach(bare_scope_context())
    cases = [
        ({"http.method": "GET", "http.url": "https://api.stripe.com/v1"}, False),
        ({"http.request.method": "GET", "url.full": "http://billing:8000/"}, True),
        ({"http.request.method": "GET", "server.address": "api.github.com"}, False),
        ({"db.system": "postgresql", "server.address": "db.example.com"}, False),  # unknown
    ]
    try:
        for attributes, allowed in cases:
            with tracer.start_as_current_span(
                "call", kind=trace.SpanKind.CLIENT, attributes=attributes
            ):
                carrier: dict[str, str] = {}
                propagator.inject(carrier)
                assert ("X-POSTHOG-DISTINCT-ID" in carrier) is allowed, attributes
        with tracer.start_as_current_span("server", kind=trace.SpanKind.SERVER):
            carrier = {}
            propagator.inject(carrier)
            assert "X-POSTHOG-DISTINCT-ID" not in carrier  # no client span: unknown
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
        with unsampled.start_as_current_span(
            "call", kind=trace.SpanKind.CLIENT, attributes={"url.full": "http://billing/"}
        ):
            carrier = {}
            propagator.inject(carrier)
            assert "X-POSTHOG-DISTINCT-ID" not in carrier  # a non-recording span: unknown
    finally:
        otel_context.detach(token)


def test_configured_targets_replace_the_defaults() -> None:
    propagator = PosthogPropagator(propagation_targets=["*.mycorp.com", re.compile(r"api-\d+\.x")])
    for url, allowed in [
        ("https://a.b.mycorp.com/", True),
        ("https://mycorp.com/", False),
        ("https://api-12.x/", True),
        ("https://api-x.x/", False),
        ("http://127.0.0.1/", False),
    ]:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, with_destination(url, scope_context()))
        assert ("baggage" in carrier) is allowed, url


def test_the_posthog_propagator_is_found_in_nested_composites() -> None:
    from posthog_otel.propagation.propagator import find_posthog_propagator

    ours = PosthogPropagator()
    stock = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    assert find_posthog_propagator(CompositePropagator([stock, ours])) is ours
    assert find_posthog_propagator(CompositePropagator([CompositePropagator([ours])])) is ours
    assert find_posthog_propagator(stock) is None


# -- interplay with the stock W3C baggage propagator ----------------------------------------


def test_composite_sends_one_member_per_key_and_honours_set_baggage(
    composite: CompositePropagator,
) -> None:
    ctx = scope_context(plan="pro")
    ctx = baggage.set_baggage("posthog.distinct_id", "from-baggage", ctx)  # the scope wins
    ctx = baggage.set_baggage("posthog.tag.extra", "a+b c", ctx)  # filled in from baggage
    ctx = baggage.set_baggage("other", "x y", ctx)
    carrier: dict[str, str] = {}
    composite.inject(carrier, ctx)
    keys = [m.split("=", 1)[0] for m in carrier["baggage"].split(",")]
    assert sorted(keys) == sorted(set(keys))
    assert "other=x+y" in carrier["baggage"]  # the stock encoding of others is left alone
    state = resolved(PosthogPropagator().extract(carrier, Context()))
    assert state.distinct_id == "user-1"
    assert state.tags == {"extra": "a+b c", "plan": "pro"}


def test_composite_to_a_non_target_strips_what_the_stock_propagator_wrote(
    composite: CompositePropagator,
) -> None:
    ctx = baggage.set_baggage("posthog.distinct_id", "leak", scope_context())
    ctx = baggage.set_baggage("other", "1", ctx)
    carrier: dict[str, str] = {}
    composite.inject(carrier, with_destination("https://api.example.com/", ctx))
    assert carrier == {"baggage": "other=1"}


def test_extract_removes_posthog_entries_the_stock_propagator_added(
    composite: CompositePropagator,
) -> None:
    carrier = {"baggage": "posthog.distinct_id=u1,posthog.tag.t=1,other=2"}
    ctx = composite.extract(carrier, Context())
    assert dict(baggage.get_all(ctx)) == {"other": "2"}
    assert resolved(ctx).distinct_id == "u1"
    untrusting = CompositePropagator([W3CBaggagePropagator(), PosthogPropagator("none")])
    ctx = untrusting.extract(carrier, Context())
    assert dict(baggage.get_all(ctx)) == {"other": "2"}
    assert ph.current_scope(ctx) is None


def test_stock_sender_with_set_baggage_is_read_by_us() -> None:
    ctx = baggage.set_baggage("posthog.distinct_id", "plain-user", Context())
    ctx = baggage.set_baggage("posthog.session_id", "s-1", ctx)
    ctx = baggage.set_baggage("posthog.tag.count", "3", ctx)
    ctx = baggage.set_baggage("posthog.tag.note", "hi there", ctx)
    carrier: dict[str, str] = {}
    W3CBaggagePropagator().inject(carrier, ctx)
    state = resolved(PosthogPropagator().extract(carrier, Context()))
    assert (state.distinct_id, state.session_id) == ("plain-user", "s-1")
    # The stock Python sender writes a space as "+", which W3C readers take as a literal "+"
    # (a documented limitation of stock-only senders; our propagator encodes "%20").
    assert carrier["baggage"].endswith("posthog.tag.note=hi+there")
    assert state.tags == {"count": 3, "note": "hi+there"}


def test_set_baggage_alone_is_injected_in_our_encoding() -> None:
    ctx = baggage.set_baggage("posthog.distinct_id", "bag user", Context())
    carrier: dict[str, str] = {}
    PosthogPropagator().inject(carrier, with_destination("http://billing/", ctx))
    assert carrier == {
        "baggage": "posthog.distinct_id=bag%20user",
        "X-POSTHOG-DISTINCT-ID": "bag user",
    }


def test_stock_receiver_reads_our_members() -> None:
    carrier: dict[str, str] = {}
    PosthogPropagator().inject(carrier, scope_context(note="1 + 1 = 2; 100%", n=5))
    entries = dict(baggage.get_all(W3CBaggagePropagator().extract(carrier, Context())))
    assert entries == {
        "posthog.distinct_id": "user-1",
        "posthog.session_id": "session-1",
        "posthog.window_id": "window-1",
        "posthog.tag.note": "1 + 1 = 2; 100%",
        "posthog.tag.n": "5",
    }


# -- hostile carriers ------------------------------------------------------------------------

header_values = st.one_of(
    st.none(),
    st.text(max_size=500),
    st.binary(max_size=500),
    st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), max_size=3),
    st.integers(),
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["baggage", "X-POSTHOG-DISTINCT-ID", "x-posthog-session-id", "X-POSTHOG-WINDOW-ID"]
        ),
        header_values,
    )
)
def test_extract_never_raises_on_any_carrier(carrier: dict[str, Any]) -> None:
    ctx = PosthogPropagator().extract(carrier, Context())
    scope = ph.current_scope(ctx)
    if scope is not None:
        state = scope.resolve()
        for value in (state.distinct_id, state.session_id, state.get("window_id")):
            assert value is None or (len(value) <= 1000 and not CONTROL.search(value))
        assert len(state.tags) <= 64


def test_inject_into_unreadable_carriers_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    class Odd:
        def __setitem__(self, key: str, value: str) -> None:
            raise RuntimeError("read-only")

    with caplog.at_level(logging.DEBUG, logger="posthog.otel"):
        PosthogPropagator().inject(Odd(), scope_context())  # logged, not raised
        PosthogPropagator().inject(None, scope_context())
    logged = [
        (r.levelno, r.getMessage(), r.exc_info[0] if r.exc_info else None)
        for r in caplog.records
        if r.name == "posthog.otel"
    ]
    message = "posthog-otel could not inject PostHog context"
    assert logged == [(logging.DEBUG, message, RuntimeError), (logging.DEBUG, message, TypeError)]


# -- settings and targets --------------------------------------------------------------------


def test_settings_from_arguments_and_environment() -> None:
    assert PropagationSettings.build(environ={}) == PropagationSettings("all", ("internal",))
    env = {
        "POSTHOG_OTEL_TRUST_INBOUND": " Headers ",
        "POSTHOG_OTEL_PROPAGATION_TARGETS": "internal, *.mycorp.com ,10.0.0.0/8,re:^a\\d$",
    }
    built = PropagationSettings.build(environ=env)
    assert built.trust_inbound == "headers"
    assert built.propagation_targets == ("internal", "*.mycorp.com", "10.0.0.0/8", "re:^a\\d$")
    assert PropagationSettings.build("none", [], environ=env) == PropagationSettings("none", ())
    assert PropagationSettings.build(environ={"POSTHOG_OTEL_PROPAGATION_TARGETS": " "}) == (
        PropagationSettings("all", ("internal",))
    )


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"trust_inbound": "some"}, {}, "trust_inbound must be one of"),
        ({}, {"POSTHOG_OTEL_TRUST_INBOUND": "yes"}, "POSTHOG_OTEL_TRUST_INBOUND must be"),
        ({"propagation_targets": ["re:("]}, {}, "propagation_targets: invalid regular"),
        ({"propagation_targets": ["10.0.0.0/99"]}, {}, "propagation_targets: invalid CIDR"),
        ({"propagation_targets": [""]}, {}, "propagation_targets: a target pattern must not"),
        ({"propagation_targets": 5}, {}, "propagation_targets must be a list"),
        ({}, {"POSTHOG_OTEL_PROPAGATION_TARGETS": "a b"}, "POSTHOG_OTEL_PROPAGATION_TARGETS:"),
    ],
)
def test_invalid_settings_name_the_option(
    kwargs: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PropagationSettings.build(environ=env, **kwargs)


def test_invalid_environment_is_logged_and_strict(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_TRUST_INBOUND", "maybe")
    monkeypatch.setenv("POSTHOG_OTEL_PROPAGATION_TARGETS", "re:(")
    with caplog.at_level(logging.ERROR, logger="posthog.otel"):
        propagator = PosthogPropagator()  # as OTEL_PROPAGATORS builds it: no exception
    assert propagator.trust_inbound == "none"
    assert propagator.targets.patterns == ("internal",)
    assert "POSTHOG_OTEL_TRUST_INBOUND" in caplog.text
    with pytest.raises(ValueError):
        PosthogPropagator(trust_inbound="maybe")  # an argument in code: an error


def test_target_patterns() -> None:
    targets = Targets(["api.mycorp.com", "*.corp", "svc-?.x", "10.1.0.0/16", "fd00::/8", "re:^a+$"])
    assert targets.matches_url("https://API.mycorp.com:443/p")
    assert not targets.matches_url("https://api.mycorp.com.evil.com/")
    assert targets.matches_host("a.b.corp") and not targets.matches_host("corp")
    assert targets.matches_host("svc-1.x") and not targets.matches_host("svc-12.x")
    assert targets.matches_host("10.1.200.3") and not targets.matches_host("10.2.0.1")
    assert targets.matches_url("http://[fd00::5]/")
    assert targets.matches_host("aaa") and not targets.matches_host("aab")
    assert not Targets([]).matches_host("127.0.0.1")
    assert Targets(["*"]).matches_host("anything.example.com")
    assert host_of("user:pw@Host.Example:99") == "host.example"
    assert host_of("http://[::1") is None


# -- helpers ---------------------------------------------------------------------------------


def test_inject_helper_with_and_without_url(composite: CompositePropagator) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("job"), ph.new_context():
        ph.identify_context("u1")
        ph.tag("plan", "pro")
        unknown = ph.inject()  # no destination: trace context only
        assert set(unknown) == {"traceparent"}
        headers = ph.inject(url="internal")  # a queue of our own
        assert headers["X-POSTHOG-DISTINCT-ID"] == "u1"
        assert "traceparent" in headers
        assert "posthog.tag.plan=pro" in headers["baggage"]
        to_webhook = ph.inject({"Content-Type": "json"}, url="https://hooks.example.com/x")
        assert set(to_webhook) == {"Content-Type", "traceparent"}
        internal = ph.inject(url="http://billing/hook")
        assert internal["X-POSTHOG-DISTINCT-ID"] == "u1"


def test_inject_helper_without_posthog_in_the_global_textmap() -> None:
    previous = get_global_textmap()
    set_global_textmap(CompositePropagator([W3CBaggagePropagator()]))
    try:
        token = otel_context.attach(baggage.set_baggage("posthog.tag.leak", "1"))
        try:
            with ph.new_context():
                ph.identify_context("u1")
                assert ph.inject(url="https://api.example.com") == {}
                assert ph.inject(url="http://127.0.0.1")["X-POSTHOG-DISTINCT-ID"] == "u1"
        finally:
            otel_context.detach(token)
    finally:
        set_global_textmap(previous)


def test_extract_helper_enters_a_root_scope() -> None:
    headers = {
        "x-PostHog-Distinct-Id": "producer-user",
        "BAGGAGE": "posthog.tag.job=resize,posthog.session_id=s9",
    }
    with ph.new_context():
        ph.tag("consumer_loop", True)
        with ph.extract(headers, capture_exceptions=False) as scope:
            assert ph.current_scope() is scope
            assert ph.get_context_distinct_id() == "producer-user"
            assert ph.get_context_session_id() == "s9"
            assert ph.get_tags() == {"job": "resize"}
            ph.tag("step", 2)
            assert ph.get_tags() == {"job": "resize", "step": 2}
        assert ph.get_tags() == {"consumer_loop": True}
    with ph.extract({"HTTP_X_POSTHOG_DISTINCT_ID": "wsgi-user"}, capture_exceptions=False):
        assert ph.get_context_distinct_id() == "wsgi-user"
    with ph.extract(None, capture_exceptions=False) as empty:
        assert empty.resolve().distinct_id is None
        ph.tag("works", True)
        assert ph.get_tags() == {"works": True}
    assert ph.current_scope() is None


def test_extract_helper_captures_a_leaving_exception_once(capture_server: Any) -> None:
    client = ph.setup("phc_test", host=capture_server.url, sync_mode=True)
    with pytest.raises(ValueError), ph.extract({"X-POSTHOG-DISTINCT-ID": "u-err"}):
        raise ValueError("boom")
    client.flush()
    events = capture_server.named("$exception")
    assert len(events) == 1
    assert events[0]["distinct_id"] == "u-err"


RESERVED_BAGGAGE = ",".join(
    [
        "posthog.distinct_id=caller",
        "posthog.tag.%24set=%7B%22is_admin%22%3Atrue%7D",
        "posthog.tag.%24groups=%7B%22company%22%3A%22evil%22%7D",
        "posthog.tag.%24session_id=forged",
        "posthog.tag.%24process_person_profile=true",
        "posthog.tag.%24trace_id=abc",
        "posthog.tag.plan=pro",
    ]
)


def test_inbound_dollar_tags_are_dropped_and_counted() -> None:
    before = bg.stats()["inbound_reserved"]
    scope = ph.current_scope(PosthogPropagator().extract({"baggage": RESERVED_BAGGAGE}))
    assert scope is not None
    assert scope.resolve().tags == {"plan": "pro"}
    assert scope.resolve().distinct_id == "caller"
    assert bg.stats()["inbound_reserved"] - before == 5


def test_reserved_tags_allowed_by_exact_name(monkeypatch: pytest.MonkeyPatch) -> None:
    propagator = PosthogPropagator(allow_reserved_tags=["$groups"])
    scope = ph.current_scope(propagator.extract({"baggage": RESERVED_BAGGAGE}))
    assert scope is not None
    assert scope.resolve().tags == {"plan": "pro", "$groups": {"company": "evil"}}
    monkeypatch.setenv("POSTHOG_OTEL_ALLOW_RESERVED_TAGS", "$trace_id, $set")
    scope = ph.current_scope(PosthogPropagator().extract({"baggage": RESERVED_BAGGAGE}))
    assert scope is not None
    assert set(scope.resolve().tags) == {"plan", "$trace_id", "$set"}
    with pytest.raises(ValueError, match=r"allow_reserved_tags.*\$"):
        PosthogPropagator(allow_reserved_tags=["groups"])


def test_invalid_reserved_tags_variable_is_logged_and_strict(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_ALLOW_RESERVED_TAGS", "set")
    monkeypatch.setenv("POSTHOG_OTEL_TRUST_INBOUND", "headers")
    with caplog.at_level(logging.ERROR, logger="posthog_otel"):
        propagator = PosthogPropagator()
    assert "POSTHOG_OTEL_ALLOW_RESERVED_TAGS" in caplog.text
    assert propagator.settings.allow_reserved_tags == frozenset()
    assert propagator.trust_inbound == "headers"  # the valid variable is kept
