"""The grader's own run of a class exercise: the verdict does not rest on the check alone.

A class exercise's check runs next to the answer in the notebook's answering process, where
a student who patches ``torch.allclose`` or the check could make it say anything. The
exercise's :class:`~resnet_edu.exercises._modules.ModuleCheck` is therefore also run here,
in the grader's process, by the same runner
(:func:`~resnet_edu.exercises._modules.run_module_check`) that the notebook's check uses:
the student's class is reached only through the answering process's ``build`` and ``run``
requests (``protocol.Build``, ``protocol.Run``; ``kernel`` builds the class, loads the
grader's weights, runs forward and backward, and sends plain tensors back). The reference,
the weights, the inputs drawn from this grading run's seed and every comparison stay here;
to pass, a submission has to produce the reference's numbers for them.
"""
from __future__ import annotations

from typing import Callable

from ..exercises._kit import salt_of
from ..exercises._modules import ModuleCheck, run_module_check
from .protocol import Build, ModuleReply, Run
from .remote import raise_for

Ask = Callable[..., ModuleReply]   # ask(Build or Run, **fields) -> the process's reply


def probe_class(spec: ModuleCheck, ask: Ask, name: str, seed: int) -> str:
    """"" when the student's class ``name`` agrees with the reference on every case and
    property of ``spec``; otherwise the sentence that says where it differs. The student's
    process is reached only through ``ask``; ``MissingName`` and ``RuleBroken`` propagate."""
    def asked(kind: str, **fields) -> ModuleReply:
        reply = ask(Build if kind == "build" else Run, **fields)
        raise_for(reply, name)
        return reply

    return run_module_check(spec, asked, name, salt_of(seed), who="The grader")
