"""The residual lab: experiments that show why residual connections work.

Each experiment is one function returning a result dataclass (``to_dict()`` for JSON),
reporting :class:`Progress` through a callback and stopping early, with what it has, when a
``threading.Event`` is set:

- :func:`run_degradation` (He et al. 2015): ResNet-d and plain-d trained side by side;
- :func:`run_lesion` (Veit et al. 2016): blocks of a trained network deleted or reordered;
- :func:`run_landscape` (Li et al. 2018): the loss around a trained network.
"""

from resnet_gui.engine.lab.common import (
    LabResult,
    Progress,
    ProgressCallback,
    TrainedNetwork,
    load_trained,
    prepare_checkpoint,
    training_data_of,
)
from resnet_gui.engine.lab.degradation import (
    HE_TABLE6_TEST_ERROR,
    LAB_RECIPE,
    DegradationResult,
    DegradationRun,
    run_degradation,
)
from resnet_gui.engine.lab.landscape import LandscapeResult, run_landscape
from resnet_gui.engine.lab.lesion import LesionResult, run_lesion

__all__ = [
    "HE_TABLE6_TEST_ERROR", "LAB_RECIPE", "DegradationResult", "DegradationRun", "LabResult",
    "LandscapeResult", "LesionResult", "Progress", "ProgressCallback", "TrainedNetwork",
    "load_trained", "prepare_checkpoint", "run_degradation", "run_landscape", "run_lesion",
    "training_data_of",
]
