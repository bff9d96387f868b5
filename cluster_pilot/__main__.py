from cluster_pilot.cli import main

main()
