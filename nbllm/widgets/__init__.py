"""Small ipywidgets over the backend; each has a plain-text fallback for consoles and nbval."""
