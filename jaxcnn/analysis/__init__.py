"""Selectivity analyses of a trained network: class entropy, grandmother cells, sparsity, CKA."""
