"""Retrieval for RAG: load -> split -> embed -> store (Chroma) -> search -> generate.

Every module is plain Python with lazy heavy imports; nbllm.rag is the script API over them.
"""
