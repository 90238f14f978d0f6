"""Reading what users hand costlens: the streaming line reader (``jsonl``), rejected lines
(``rejects``), request files (``requests_file``) and recorded result files (``replay``), whose
formats are a family: ``formats/``, one module per format (OpenAI/vLLM/Mistral/Azure batch output,
Anthropic, Gemini, Vertex AI and Bedrock batch results, plain chat.completion objects).

Everything here writes into ``costlens.store`` and knows nothing of prices.
"""
