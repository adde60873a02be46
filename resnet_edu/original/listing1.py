"""Listing 1 of the original post (the block without BatchNorm), verbatim.

Broken on purpose: it is kept as the object chapter 5 examines. Every layer is
applied to the input ``x`` instead of to the previous layer's output, so the
block returns ``relu(x)`` and none of its parameters ever receives a gradient.
Do not use it; use :class:`resnet_edu.blocks.BasicBlock`.

Source: "Residual Block from ResNet - pytorch", the original post (2022-05-21).
Everything below the marker line is the post's code, unchanged (the class-name
typo ``Residual_Blcok`` included).
"""
# flake8: noqa
# ruff: noqa
# ---- the original post's code, verbatim ----
import torch.nn as nn

class Residual_Blcok(nn.Module):
    def __init__(self, in_channels, out_channels):
        super(Residual_Blcok, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.conv1(x)
        out = self.relu(x)
        out = self.conv2(x)
        out = out + x   # identity
        out = self.relu(x)

        return out
