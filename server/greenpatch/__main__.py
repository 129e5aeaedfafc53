from greenpatch.cli import main

raise SystemExit(main())
