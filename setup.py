"""jaxcnn: a JAX/Flax reimplementation of the CNN analysis toolkit of Agrawal,
Girshick & Malik (ECCV 2014), with Zeiler & Fergus and Yosinski et al."""

import setuptools

setuptools.setup(
    name="jaxcnn",
    version="0.1.0",
    description="Fast JAX/Flax toolkit for analysing CaffeNet-style CNNs.",
    packages=setuptools.find_packages(include=["jaxcnn", "jaxcnn.*"]),
    python_requires=">=3.10",
    # Lower bounds are the versions tested; nothing is pinned exactly.
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2",
        "orbax-checkpoint>=0.12",
        "tensorflow-datasets>=4.9",
        "array_record>=0.8",
        "grain>=0.2",
        "numpy>=2.0",
        "scikit-learn>=1.5",
        "absl-py>=2.0",
        "pillow>=10.0",
        "matplotlib>=3.8",
        "protobuf>=4.0",
    ],
    extras_require={
        # The detection tests run selective search too.
        "test": ["pytest>=8.0", "ruff>=0.5", "opencv-contrib-python-headless>=4.8"],
        # PyTorch is the peer the network benchmark is timed against; Captum the peer of the
        # visualisation benchmark (occlusion, deconvnet); simplejpeg (libjpeg-turbo) the decoder
        # benchmarks/accelerator.py times against PIL.
        "bench": ["torch>=2.0", "captum>=0.7", "simplejpeg>=1.7"],
        # Selective-search proposals for detection (jaxcnn.detect.search):
        # OpenCV's contrib implementation of Uijlings et al.
        "detect": ["opencv-contrib-python-headless>=4.8"],
    },
)
