"""The sign-in guard's policy: a guesser is slowed per address and per account, the real user
from another address is never locked out, and unknown names are treated as known ones."""

from __future__ import annotations

from loupe_gateway.sign_in_guard import PER_ACCOUNT, PER_PAIR, PER_SOURCE, WINDOW_SECONDS, SignInGuard


def test_one_address_guessing_one_account_waits_and_the_owner_elsewhere_does_not():
    guard = SignInGuard()
    for i in range(PER_PAIR):
        assert guard.wait_seconds("10.0.0.9", "ann", now=i) == 0
        guard.failed("10.0.0.9", "ann", now=i)
    assert guard.wait_seconds("10.0.0.9", "ann", now=PER_PAIR) > 0
    assert guard.wait_seconds("10.0.0.1", "ann", now=PER_PAIR) == 0  # ann, from her own desk
    assert guard.wait_seconds("10.0.0.9", "bob", now=PER_PAIR) == 0  # the address may try others, for now
    assert guard.wait_seconds("10.0.0.9", "ann", now=WINDOW_SECONDS + 1) == 0  # the window passes


def test_one_address_guessing_many_accounts_waits():
    guard = SignInGuard()
    for i in range(PER_SOURCE):
        guard.failed("10.0.0.9", f"user{i}", now=i)
    assert guard.wait_seconds("10.0.0.9", "someone-new", now=PER_SOURCE) > 0
    assert guard.wait_seconds("10.0.0.2", "someone-new", now=PER_SOURCE) == 0


def test_many_addresses_guessing_one_account_close_it_only_to_themselves():
    guard = SignInGuard()
    for i in range(PER_ACCOUNT):
        guard.failed(f"10.1.0.{i}", "ann", now=i)
    assert guard.wait_seconds("10.1.0.3", "ann", now=PER_ACCOUNT) > 0  # a guesser: slowed
    assert guard.wait_seconds("10.0.0.1", "ann", now=PER_ACCOUNT) == 0  # never failed on ann: let in


def test_success_clears_the_pair_and_names_need_not_exist():
    guard = SignInGuard()
    for i in range(PER_PAIR - 1):
        guard.failed("10.0.0.5", "ann", now=i)
    guard.succeeded("10.0.0.5", "ann")
    guard.failed("10.0.0.5", "ann", now=10)
    assert guard.wait_seconds("10.0.0.5", "ann", now=11) == 0
    for i in range(PER_PAIR):
        guard.failed("10.0.0.5", "no-such-user", now=20 + i)
    assert guard.wait_seconds("10.0.0.5", "no-such-user", now=30) > 0  # as for a real name
