"""The benchmark tasks, by name."""

from harness.tasks.charlm import CharLM
from harness.tasks.classification import Classification
from harness.tasks.diffusion import Diffusion
from harness.tasks.gflownet import GFlowNet

TASKS = {task.name: task for task in (Classification, CharLM, Diffusion, GFlowNet)}
