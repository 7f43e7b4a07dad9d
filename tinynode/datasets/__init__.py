"""The MNIST sample bundled with tinynode (see README.md in this folder)."""
