from scoring_runtime.cli import main

main()
