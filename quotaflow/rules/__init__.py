from quotaflow.rules.expressions import CompiledExpression, ExpressionError, compile_expression  # noqa: F401
