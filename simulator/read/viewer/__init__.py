"""The viewer: a self-contained HTML report of runs (`trajectories report`) and the same page
served live over a folder of runs (`trajectories serve`). Everything shown comes from the run
folders; text from logs reaches the page as JSON data and is rendered as text, never as HTML."""
