"""Training, where users import it from: `from vaelab.train import TensorData, train`.

Defined in `vaelab.data.tensors` and `vaelab.training`; this module is the public name."""

from vaelab.core.device import resolve_device
from vaelab.data.tensors import TensorData
from vaelab.training.run import Trainer, train
from vaelab.training.trainer import train_group

__all__ = ["TensorData", "Trainer", "resolve_device", "train", "train_group"]
