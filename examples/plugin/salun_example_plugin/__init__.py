"""An example salun plugin. salun imports each module through its entry point, so this
package imports none of them: an allow-list that excludes one keeps its code unloaded."""
