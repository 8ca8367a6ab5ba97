"""The benchmarks' reimplementation of the authors' batch-shared AMD.

``benchmarks/_authors_amd.py`` is not part of the package (and benchmarks/ is
not collected), so it is imported by path. Its defining behaviour is checked on
tiny float64 problems whose trials can be worked out by hand: one step size for
the whole batch, a trial accepted only if every sample passes, forced
acceptance after ``n_shrink`` halvings, and that the flow lowers the loss to
the least-squares minimum of a linear decoder.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_authors_amd.py"
_spec = importlib.util.spec_from_file_location("_authors_amd", _PATH)
authors_amd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(authors_amd)
shared_amd = authors_amd.shared_amd


def mse(output, target):
    """Per-row mean squared error, shape (n,)."""
    return (output - target).square().mean(dim=1)


def diagonal_decoder(weights):
    """Linear decoder ``D(z) = diag(weights) z`` without bias, in float64."""
    decoder = torch.nn.Linear(len(weights), len(weights), bias=False).double()
    with torch.no_grad():
        decoder.weight.copy_(torch.diag(torch.tensor(weights, dtype=torch.float64)))
    return decoder


# D(z) = diag(0.5, 2) z with MSE: l = ((0.5 z_1 - y_1)^2 + (2 z_2 - y_2)^2) / 2, so
# from z = 0 a step dt scales residual k by (1 - w_k^2 dt). Row "easy" has its
# residual along the flat axis (w = 0.5: every dt <= 1 lowers its loss); row
# "hard" along the steep one (w = 2: dt = 1 and 0.5 do not, dt = 0.25 lands on
# its minimum).
WEIGHTS = (0.5, 2.0)
Y = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # easy, hard
Z0 = torch.zeros(2, 2, dtype=torch.float64)


def run(**kwargs):
    return shared_amd(diagonal_decoder(WEIGHTS), mse, Y, Z0, **kwargs)


def test_a_trial_is_accepted_only_if_every_row_passes():
    # Alone, the easy row accepts the first trial (dt = 1) and the hard row does
    # not; in one batch the hard row's failure rejects it for both.
    alone = run(group_size=1, max_trials=1)
    assert alone["accepted"].tolist() == [1, 0]
    torch.testing.assert_close(
        alone["z"], torch.tensor([[0.5, 0.0], [0.0, 0.0]]).double()
    )

    batch = run(max_trials=1)
    assert batch["accepted"].tolist() == [0]
    assert batch["trials"].tolist() == [1]
    torch.testing.assert_close(batch["z"], Z0)
    torch.testing.assert_close(batch["loss"], mse(Z0, Y))


def test_one_step_size_is_shared_by_the_batch():
    # Rejected at dt = 1 and 0.5, the batch accepts dt = 0.25, and both rows move
    # by that same step: z = 0.25 f(0) with f(0) = diag(w) y.
    r = run(max_trials=3)
    assert r["trials"].tolist() == [3]
    assert r["accepted"].tolist() == [1]
    assert r["forced"].tolist() == [0]
    torch.testing.assert_close(
        r["z"], torch.tensor([[0.125, 0.0], [0.0, 0.5]]).double()
    )
    torch.testing.assert_close(r["t"], torch.tensor([0.25]).double())
    # Three decoder passes per trial, plus f(z0); the same for every row.
    assert r["n_fev"].tolist() == [10, 10]


@pytest.mark.parametrize("n_shrink", [0, 1, 3])
def test_forced_acceptance_after_n_shrink_halvings(n_shrink):
    # With a huge sigma no trial of the easy row passes the decrease test. The
    # step starts at dt_min = 1 and halves after every rejection; the trial made
    # once dt < 0.5 ** n_shrink, i.e. after n_shrink + 1 halvings, is accepted
    # anyway, moves z by that tiny step and credits dt_jump of flow time.
    y, z0 = Y[:1], Z0[:1]
    decoder = diagonal_decoder(WEIGHTS)
    options = {"sigma": 1e6, "n_shrink": n_shrink, "dt_jump": 10.0}
    forced_at = n_shrink + 2  # the trial number
    before = shared_amd(decoder, mse, y, z0, max_trials=forced_at - 1, **options)
    assert before["accepted"].tolist() == [0]
    assert before["forced"].tolist() == [0]
    torch.testing.assert_close(before["z"], z0)

    r = shared_amd(decoder, mse, y, z0, max_trials=forced_at, **options)
    assert r["accepted"].tolist() == [1]
    assert r["forced"].tolist() == [1]
    dt = 0.5 ** (n_shrink + 1)
    torch.testing.assert_close(r["z"], torch.tensor([[0.5 * dt, 0.0]]).double())
    torch.testing.assert_close(r["t"], torch.tensor([10.0]).double())


def test_lowers_the_loss_to_the_least_squares_minimum():
    generator = torch.Generator().manual_seed(0)
    n, d, p = 6, 3, 8
    decoder = torch.nn.Linear(d, p).double()
    with torch.no_grad():
        weight = torch.randn(p, d, generator=generator, dtype=torch.float64)
        decoder.weight.copy_(0.5 * weight)
        decoder.bias.copy_(torch.randn(p, generator=generator, dtype=torch.float64))
    y = torch.randn(n, p, generator=generator, dtype=torch.float64)
    z0 = torch.zeros(n, d, dtype=torch.float64)
    # The minimiser of each row's MSE: least squares of W z = y - b.
    z_star = torch.linalg.lstsq(decoder.weight, (y - decoder.bias).T).solution.T
    l_star = mse(decoder(z_star), y).detach()
    l0 = mse(decoder(z0), y).detach()

    # The authors' defaults: the loss goes down, most of the way to l*.
    r = shared_amd(decoder, mse, y, z0)
    assert torch.all(r["loss"] < l0)
    assert torch.all(r["loss"] - l_star <= 1e-3 * (l0 - l_star))
    torch.testing.assert_close(r["loss"], mse(decoder(r["z"]), y).detach())

    # A pure trial budget with unlimited flow time converges to z*.
    r = shared_amd(decoder, mse, y, z0, eps_conv=0.0, tau=1e12, max_trials=2000)
    torch.testing.assert_close(r["z"], z_star, rtol=0, atol=1e-8)
    torch.testing.assert_close(r["loss"], l_star, rtol=0, atol=1e-12)


def test_groups_are_independent_batches():
    # group_size splits the rows into batches that run side by side: the same
    # result as running each batch on its own.
    r = run(group_size=1, max_trials=4)
    for i in range(2):
        alone = shared_amd(
            diagonal_decoder(WEIGHTS), mse, Y[i : i + 1], Z0[i : i + 1], max_trials=4
        )
        torch.testing.assert_close(r["z"][i : i + 1], alone["z"])
        assert r["accepted"][i] == alone["accepted"][0]


def test_unknown_option_and_uneven_groups_raise():
    with pytest.raises(ValueError, match="unknown shared_amd options"):
        run(step=1.0)
    with pytest.raises(ValueError, match="do not split"):
        shared_amd(
            diagonal_decoder(WEIGHTS), mse, Y[[0, 1, 0]], Z0[[0, 1, 0]], group_size=2
        )
