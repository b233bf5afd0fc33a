"""Cluster membership, consistent-hash rings and the routing clients that send each call to its owner."""
