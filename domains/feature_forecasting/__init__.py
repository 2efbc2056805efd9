"""Feature forecasting (VFMF-style): forecast a video's future in a vision model's feature space.

    frames --extractors--> token features --autoencoder--> per-token latents (VAE / PCA / raw)
    latents --model (space-time transformer; flow matching or regression)--> K rollouts
    rollouts --autoencoder.decode--> features --heads--> segmentation, depth, RGB
    scores: metrics (feature MSE of the mean / mean-of-K / min-of-K, mIoU, depth, sharpness,
    branch-distribution TV against exactly known futures of the sprite videos)

Modules: :mod:`.extractors` (DINOv2 from a local file; the offline filter-bank default),
:mod:`.autoencoder`, :mod:`.model`, :mod:`.heads`, :mod:`.metrics`, :mod:`.pipeline` (train /
forecast / evaluate), :mod:`.figures`, :mod:`.cli` (``sciflow vfm``), :mod:`.demo`.
Data: :mod:`sciflow.datasets.sprites` and :mod:`sciflow.datasets.video`.
"""

from sciflow.domains.feature_forecasting.autoencoder import (
    ChannelVAE,
    Compressor,
    PCACompressor,
    RawFeatures,
    fit_compressor,
)
from sciflow.domains.feature_forecasting.extractors import (
    DINOv2Extractor,
    FeatureExtractor,
    FilterBankExtractor,
    make_extractor,
)
from sciflow.domains.feature_forecasting.heads import DecoderHeads
from sciflow.domains.feature_forecasting.model import ForecasterSpec, LatentForecaster, rollout
from sciflow.domains.feature_forecasting.pipeline import (
    VFMConfig,
    VFMSystem,
    evaluate_system,
    load_system,
    train_system,
)

__all__ = [
    "ChannelVAE",
    "Compressor",
    "DINOv2Extractor",
    "DecoderHeads",
    "FeatureExtractor",
    "FilterBankExtractor",
    "ForecasterSpec",
    "LatentForecaster",
    "PCACompressor",
    "RawFeatures",
    "VFMConfig",
    "VFMSystem",
    "evaluate_system",
    "fit_compressor",
    "load_system",
    "make_extractor",
    "rollout",
    "train_system",
]
