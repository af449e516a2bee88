"""training search history: the detailed searches a user saved, per tenant

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'training_search_histories',
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('modified_by', sa.String(length=255), nullable=True),
        sa.Column('modified_at', sa.DateTime(), nullable=False),
        sa.Column('id', Id, nullable=False),
        sa.Column('tenant_id', Id, nullable=False),
        sa.Column('user_id', Id, nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('detail_json', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_training_search_histories_tenant_id_tenants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_training_search_histories_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_search_histories')),
    )
    op.create_index(op.f('ix_training_search_histories_tenant_id'), 'training_search_histories', ['tenant_id'],
                    unique=False)
    op.create_index(op.f('ix_training_search_histories_user_id'), 'training_search_histories', ['user_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_training_search_histories_user_id'), table_name='training_search_histories')
    op.drop_index(op.f('ix_training_search_histories_tenant_id'), table_name='training_search_histories')
    op.drop_table('training_search_histories')
