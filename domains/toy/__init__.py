"""Two-dimensional flows: the smallest complete domain, and the template for new ones.

    source density (8 gaussians) --coupling (independent or exact OT)--> target (moons),
    an MLP velocity trained with FlowMatcher + Trainer, sampled with any solver, scored by W2.

>>> from sciflow.domains.toy import Config, evaluate, load, sample, train      # doctest: +SKIP
>>> model = train(Config(coupling="ot"))
>>> x = sample(model, 1000, solver="euler", steps=4)
>>> evaluate(model)["euler-4"]                      # W2 to fresh target draws
>>> model.save("toy.pt"); load("toy.pt")

It has every module of the domain shape (``domains/README.md``): :mod:`.config`, :mod:`.model`,
:mod:`.training`, :mod:`.sampling`, :mod:`.evaluation`, :mod:`.cli` (``sciflow toy``), :mod:`.demo`.
Public names load on first use, so ``sciflow --help`` imports no torch.
"""

from sciflow.plugins import lazy_exports, public_names

_EXPORTS = {
    ".config": ("Config", "COUPLINGS"),
    ".model": ("KIND", "Model", "load"),
    ".training": ("train",),
    ".sampling": ("sample",),
    ".evaluation": ("evaluate", "plot"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = public_names(_EXPORTS)
