"""socialrec: PySpark jobs that recommend social-network content and measure how much
language-model representations of the content add over behaviour alone.

The library never creates a SparkSession on import; see ``socialrec.core.session``.
"""

__version__ = "0.1.0"
