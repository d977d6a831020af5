"""cnnlab: a reproducible deep-learning lab on PyTorch + Lightning.

Three exercises (non-sequential CNNs on CIFAR-10, transfer learning on Food-101, autoencoders on
notMNIST) and a report built from their recorded runs. Start with ``cnnlab --help``.
"""

__version__ = "0.1.0"
