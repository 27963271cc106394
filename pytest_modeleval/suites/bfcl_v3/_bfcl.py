"""Import bfcl-eval's checker and decoders without its handler registry.

`bfcl_eval.constants.model_config` imports every vendor SDK bfcl-eval supports
(anthropic, cohere, qwen_agent, ...), yet the AST checker reads from it only
each model's `underscore_to_dot` flag. A stand-in module with that flag is
installed before the checker is imported, so none of those SDKs are needed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from dataclasses import dataclass
from functools import cache
from typing import Any

BFCL_EVAL_VERSION = "2026.3.23"
INSTALL_LINE = f"pip install --no-deps bfcl-eval=={BFCL_EVAL_VERSION}"

# The checker looks up MODEL_CONFIG_MAPPING[model_name.replace("_", "/")];
# this name has no underscore, so the lookup key is the name itself.
CHECKER_MODEL_NAME = "pytest-modeleval"


class BfclMissingError(ImportError):
    """bfcl-eval (or a package its checker needs) is not installed."""


@dataclass(frozen=True)
class _CheckerModelConfig:
    underscore_to_dot: bool = False


@dataclass(frozen=True)
class Bfcl:
    """The bfcl-eval functions this project calls."""

    ast_checker: Any
    decode_prompting: Any
    convert_to_tool: Any
    system_prompt: Any
    add_language_hint: Any
    is_empty_output: Any
    is_function_calling_format_output: Any
    Language: Any
    ReturnFormat: Any
    ModelStyle: Any
    GORILLA_TO_OPENAPI: Any
    # Multi-turn pieces.
    multi_turn_checker_module: Any
    convert_to_function_call: Any
    decode_execute_prompting: Any
    format_execution_results_prompting: Any
    is_empty_execute_response: Any
    additional_function_prompt_fc: str
    additional_function_prompt_prompting: str
    maximum_step_limit: int
    version: str


@cache
def load_bfcl() -> Bfcl:
    """Import bfcl-eval once; raise BfclMissingError naming the install line."""
    _install_model_config_stand_in()
    # bfcl-eval creates result/ and score/ folders under BFCL_PROJECT_ROOT at
    # import time, by default inside site-packages; keep them out of there.
    scratch = os.path.join(tempfile.gettempdir(), "modeleval-bfcl")
    os.environ.setdefault("BFCL_PROJECT_ROOT", scratch)
    try:
        from bfcl_eval import utils as bfcl_utils
        from bfcl_eval.constants import default_prompts
        from bfcl_eval.constants.enums import Language, ModelStyle, ReturnFormat
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker
        from bfcl_eval.model_handler import utils as handler_utils
    except ImportError as error:
        raise BfclMissingError(
            f"BFCL needs bfcl-eval {BFCL_EVAL_VERSION} ({error}); install it with: {INSTALL_LINE}"
        ) from None
    from importlib.metadata import version

    return Bfcl(
        ast_checker=ast_checker,
        decode_prompting=handler_utils.default_decode_ast_prompting,
        convert_to_tool=handler_utils.convert_to_tool,
        system_prompt=handler_utils.system_prompt_pre_processing_chat_model,
        add_language_hint=bfcl_utils.add_language_specific_hint_to_function_doc,
        is_empty_output=bfcl_utils.is_empty_output,
        is_function_calling_format_output=bfcl_utils.is_function_calling_format_output,
        Language=Language,
        ReturnFormat=ReturnFormat,
        ModelStyle=ModelStyle,
        GORILLA_TO_OPENAPI=GORILLA_TO_OPENAPI,
        multi_turn_checker_module=multi_turn_checker,
        convert_to_function_call=handler_utils.convert_to_function_call,
        decode_execute_prompting=handler_utils.default_decode_execute_prompting,
        format_execution_results_prompting=handler_utils.format_execution_results_prompting,
        is_empty_execute_response=multi_turn_checker.is_empty_execute_response,
        additional_function_prompt_fc=default_prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC,
        additional_function_prompt_prompting=(
            default_prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING),
        maximum_step_limit=default_prompts.MAXIMUM_STEP_LIMIT,
        version=version("bfcl-eval"),
    )


def _install_model_config_stand_in() -> None:
    name = "bfcl_eval.constants.model_config"
    if name in sys.modules:
        return
    stand_in = types.ModuleType(name)
    stand_in.__doc__ = "pytest-modeleval stand-in: only the underscore_to_dot flag is read."
    stand_in.MODEL_CONFIG_MAPPING = {CHECKER_MODEL_NAME: _CheckerModelConfig()}  # type: ignore[attr-defined]
    sys.modules[name] = stand_in
