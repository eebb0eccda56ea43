"""The models' building blocks against small float64 references written with loops."""
import pytest
import torch

from recbole_croloss.model.layers import (dynamic_routing, hard_readout, label_aware_readout,
                                          masked_mean, padding_mask, self_attentive_interests, squash)



@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


LENGTHS = torch.tensor([1, 3, 5, 2])


def ref_squash(s):
    n2 = float((s * s).sum())
    return n2 / (1 + n2) / (n2 + 1e-9) ** 0.5 * s


def test_padding_mask_and_masked_mean():
    torch.manual_seed(0)
    emb = torch.randn(4, 5, 3)
    mask = padding_mask(LENGTHS, 5)
    assert mask.tolist()[1] == [True, True, True, False, False]
    got = masked_mean(emb, mask)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(got[b], emb[b, :n].mean(0))


def test_squash_matches_reference_and_keeps_norm_below_one():
    torch.manual_seed(1)
    s = torch.randn(6, 4) * torch.tensor([0.01, 0.5, 1.0, 3.0, 10.0, 100.0])[:, None]
    got = squash(s)
    for row, ref in zip(got, s):
        torch.testing.assert_close(row, ref_squash(ref))
    assert (got.norm(dim=-1) < 1).all()


def test_self_attentive_interests_reference():
    torch.manual_seed(2)
    B, L, K, d = 4, 5, 3, 2
    logits, emb = torch.randn(B, L, K), torch.randn(B, L, d)
    got = self_attentive_interests(logits, emb, padding_mask(LENGTHS, L))
    for b, n in enumerate(LENGTHS.tolist()):
        for k in range(K):
            w = torch.exp(logits[b, :n, k]) / torch.exp(logits[b, :n, k]).sum()
            torch.testing.assert_close(got[b, k], (w[:, None] * emb[b, :n]).sum(0))


def ref_routing(item_hat, lengths, iterations, logits):
    """Loops over users, interests and behaviours; softmax over interests per behaviour."""
    B, K, L, d = item_hat.shape
    out = torch.zeros(B, K, d)
    for b in range(B):
        n = int(lengths[b])
        logit = logits[b].clone()
        for it in range(iterations):
            w = torch.zeros(K, L)
            for l in range(n):
                w[:, l] = torch.exp(logit[:, l]) / torch.exp(logit[:, l]).sum()
            z = torch.stack([ref_squash(sum(w[k, l] * item_hat[b, k, l] for l in range(L))) for k in range(K)])
            if it < iterations - 1:
                for k in range(K):
                    for l in range(L):
                        logit[k, l] += float(item_hat[b, k, l] @ z[k])
        out[b] = z
    return out


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_dynamic_routing_reference(iterations):
    torch.manual_seed(3)
    B, K, L, d = 4, 3, 5, 2
    item_hat, logits = torch.randn(B, K, L, d), torch.randn(B, K, L)
    got = dynamic_routing(item_hat, padding_mask(LENGTHS, L), iterations, logits)
    torch.testing.assert_close(got, ref_routing(item_hat, LENGTHS, iterations, logits))


def test_dynamic_routing_gradient_only_through_the_last_round():
    """The rounds before the last see item_hat through a stop-gradient (ComiRec's code): the
    gradient equals that of the last round with the routing weights held constant."""
    torch.manual_seed(4)
    B, K, L, d = 4, 3, 5, 2
    item_hat = torch.randn(B, K, L, d, requires_grad=True)
    logits, mask = torch.randn(B, K, L), padding_mask(LENGTHS, L)
    dynamic_routing(item_hat, mask, 3, logits).sum().backward()
    with torch.no_grad():  # the routing weights of the last round
        b = logits.clone()
        for _ in range(2):
            z = squash(((b.softmax(1) * mask[:, None])[..., None] * item_hat).sum(2))
            b = b + (item_hat @ z[..., None]).squeeze(-1)
        w = b.softmax(1) * mask[:, None]
    held = item_hat.detach().clone().requires_grad_(True)
    squash((w[..., None] * held).sum(2)).sum().backward()
    torch.testing.assert_close(item_hat.grad, held.grad)
    assert (item_hat.grad[1, :, 3:] == 0).all()  # padding positions get no gradient


def test_hard_readout_picks_the_argmax_interest():
    torch.manual_seed(5)
    interests, target = torch.randn(50, 4, 8), torch.randn(50, 8)
    got = hard_readout(interests, target)
    for b in range(50):
        best = max(range(4), key=lambda k: float(interests[b, k] @ target[b]))
        assert torch.equal(got[b], interests[b, best])


@pytest.mark.parametrize("power", [0, 1, 2, 3])
def test_label_aware_readout_reference(power):
    torch.manual_seed(6)
    interests, target = torch.randn(6, 4, 8), torch.randn(6, 8)
    got = label_aware_readout(interests, target, power)
    for b in range(6):
        a = torch.tensor([float(interests[b, k] @ target[b]) ** power for k in range(4)])
        w = torch.exp(a - a.max()) / torch.exp(a - a.max()).sum()
        torch.testing.assert_close(got[b], (w[:, None] * interests[b]).sum(0))
    if power == 0:
        torch.testing.assert_close(got, interests.mean(1))
