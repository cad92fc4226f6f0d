"""The metric engine: one catalogue of metrics, one caller-free function that measures them."""
