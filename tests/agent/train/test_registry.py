"""Which trainer builds which voice (agent/train/registry.py): the providers' own, and extra ones
named in the settings, under a name of their own or in a provider's place."""

from __future__ import annotations

from agent.train.registry import trainers
from providers.rvc.spec import SPEC as RVC
from tests.fake_trainer import CountingParams
from tests.providers.rvc.quick_trainer import QuickRvcParams


def test_an_extra_trainer_in_a_providers_place_keeps_the_rest_of_its_trainer() -> None:
    found = trainers({"rvc": "tests.providers.rvc.quick_trainer:QuickRvcTrainer",
                      "counting": "tests.fake_trainer:CountingTrainer"})
    rvc = found["rvc"]
    assert RVC.trainer is not None and rvc.target == "tests.providers.rvc.quick_trainer:QuickRvcTrainer"
    assert rvc.params is QuickRvcParams
    assert (rvc.outputs, rvc.check, rvc.use, rvc.memory_mb, rvc.remote) == (
        RVC.trainer.outputs, RVC.trainer.check, RVC.trainer.use, RVC.trainer.memory_mb, True)
    assert rvc.steps is not None and rvc.steps(QuickRvcParams()) == 2  # the provider's count of its params
    counting = found["counting"]
    assert (counting.outputs, counting.params, counting.check, counting.remote) == ("counting-models", CountingParams, None, True)
    assert counting.steps is not None and counting.steps(CountingParams(steps=7)) == 7  # its own hook
    assert trainers({})["rvc"] is RVC.trainer
