"""Pure tables and functions that turn an answer into a cause and a Tip. They ask nothing."""
