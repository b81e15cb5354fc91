"""Jobs and the queue policy's admission rule (the pool applies it in test_pool)."""

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import Job, QueuePolicy


def jobs(*groups):
    return [Job(job_id=f"{g}:bench", snapshot=f"snap-{g}", eval_set="bench", group=g) for g in groups]


@pytest.mark.parametrize(
    "policy, waiting, new, kept, dropped",
    [
        (QueuePolicy("latest", max_pending=2), [1, 2], 3, [2, 3], [1]),
        (QueuePolicy("latest", max_pending=1), [1, 2], 3, [3], [1, 2]),
        (QueuePolicy("latest", max_pending=2), [1], 2, [1, 2], []),
        (QueuePolicy("latest", max_pending=2), [1, 2], 2, [1, 2, 2], []),  # a group already waiting
        # every_nth keeps every n-th group counting back from the newest
        (QueuePolicy("every_nth", max_pending=3, n=2), [1, 2, 3], 4, [2, 4], [1, 3]),
        (QueuePolicy("every_nth", max_pending=3, n=2), [2, 4, 5], 6, [4, 6], [2, 5]),
    ],
)
def test_admit(policy, waiting, new, kept, dropped):
    (job,) = jobs(new)
    got_kept, got_dropped = policy.admit(jobs(*waiting), job)
    assert [j.group for j in got_kept] == kept
    assert [j.group for j in got_dropped] == dropped


@pytest.mark.parametrize(
    "text, want",
    [("latest", QueuePolicy()), ("every_nth", QueuePolicy("every_nth")),
     ("every_nth:3", QueuePolicy("every_nth", n=3))],
)
def test_parse(text, want):
    assert QueuePolicy.parse(text) == want
    assert QueuePolicy.parse(want) is want


@pytest.mark.parametrize("policy, match", [("every_nth:x", "'queue_policy' parameter"), (3, "'queue_policy'"),
                                           ("every_nth:1", "'n' parameter of QueuePolicy"),
                                           ("newest", "'kind' parameter of QueuePolicy")])
def test_parse_rejects(policy, match):
    with pytest.raises(ParameterError, match=match):
        QueuePolicy.parse(policy)
