"""Commands beside the DAG (quality benchmark, campaign measurement, follow-up simulation, public
data loaders, Spark batch scoring); they may compose stages."""
