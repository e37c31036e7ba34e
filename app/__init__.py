"""gensearch application layer: the command line and the Streamlit UI."""
