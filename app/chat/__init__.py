"""Chat conversations (semantics §11): messages from any chat tool, runs, activities."""
