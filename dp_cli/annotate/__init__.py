"""`dp annotate`: LLM rewriting of descriptions for edited images (DESIGN.md section 1, "Annotation").

Input reading and keys (`records`), prompt templates (`prompts`), answer validation (`validate`),
backends (`backends`: openai, openai-batch, offline), the resumable async runner (`runner`).
"""
