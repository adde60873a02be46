"""Imported once by the fork server of the answering processes: torch, every exercise
check and the sandbox's list of readable folders, so that each answering process starts
in milliseconds, not seconds."""
import torch  # noqa: F401

from resnet_edu.classroom import sandbox, seccomp  # noqa: F401  (confine() imports nothing)
from resnet_edu.exercises import exercises

exercises()
sandbox.prepare()
