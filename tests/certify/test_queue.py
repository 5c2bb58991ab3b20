"""DomainQueue keeps exactly the domains put in and not taken out, whatever the order of operations."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.certify.beta_crown import DomainBatch
from robustest.certify.queue import DomainQueue

N, M, P = 5, 2, 3


def _batch(ids: list[int]) -> DomainBatch:
    """Domains tagged by id: splits, alpha and beta all carry it, so a mixed-up row shows."""
    n = len(ids)
    t = torch.tensor(ids, dtype=torch.float32)
    return DomainBatch((torch.tensor(ids) % 100).to(torch.int8)[:, None].expand(n, N).clone(),
                       t[:, None, None].expand(n, M, N).clone(), -t[:, None, None].expand(n, M, N).clone(),
                       torch.tensor(ids) % P)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "pop", "discard"]), st.integers(1, 700)), max_size=12))
def test_queue_matches_a_plain_list(ops):
    q, ref, nxt = DomainQueue(), {}, 0
    for op, n in ops:
        if op == "add":
            ids = list(range(nxt, nxt + n))
            nxt += n
            q.add(_batch(ids), torch.tensor(ids, dtype=torch.float64),
                  torch.tensor(ids, dtype=torch.float64)[:, None].expand(n, M))
            ref.update({i: i % P for i in ids})
        elif op == "pop" and len(q):
            slots = q.live()[torch.randperm(len(q), generator=torch.Generator().manual_seed(n))[:n]]
            batch, low = q.pop(slots)
            ids = batch.alpha[:, 0, 0].long().tolist()
            assert low[:, 0].long().tolist() == ids and (-batch.beta[:, 0, 0]).long().tolist() == ids
            assert batch.prop.tolist() == [i % P for i in ids]
            for i in ids:
                del ref[i]
        elif op == "discard":
            gone = torch.zeros(P, dtype=torch.bool)
            gone[n % P] = True
            q.discard(gone)
            ref = {i: p for i, p in ref.items() if p != n % P}
        assert len(q) == len(ref)
        assert sorted(q.margins().long().tolist()) == sorted(ref)
        assert sorted(q.props().tolist()) == sorted(ref.values())
